package watcher

import (
	"flag"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/albdrain/albdrain/drain/watcher/release"
)

func TestDefaults(t *testing.T) {
	want := Config{
		HoldAddr:           ":8443",
		ReleasePolicy:      release.PolicyQuiet,
		SettleTime:         30 * time.Second,
		PollInterval:       5 * time.Second,
		APIRate:            5,
		APIBurst:           10,
		DeregisterRate:     1,
		DeregisterBurst:    5,
		AWSCallTimeout:     10 * time.Second,
		MaxConcurrentHolds: 1000,
		HoldMargin:         30 * time.Second,
		FallbackAfter:      3,
		DiscoveryRefresh:   5 * time.Minute,
		Peers:              PeersConfig{Share: true, TokenFile: "/var/run/secrets/albdrain/peer/token"},
	}
	// A zero Config bound to flags, as a command line embeds it, gets the same.
	var bound Config
	bound.BindFlags(flag.NewFlagSet("albdrain", flag.ContinueOnError))
	for name, got := range map[string]Config{"NewConfig": NewConfig(), "BindFlags": bound} {
		if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
			t.Errorf("%s defaults (-want +got):\n%s", name, diff)
		}
	}
	if err := want.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestBindFlags(t *testing.T) {
	c := NewConfig()
	fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
	c.BindFlags(fs)
	err := fs.Parse([]string{
		"--hold-bind-address=:8443",
		"--hold-cert-dir=/certs",
		"--release-policy=draining",
		"--settle-time=45s",
		"--poll-interval=2s",
		"--aws-api-qps=2.5",
		"--aws-api-burst=4",
		"--aws-deregister-qps=0.5",
		"--aws-deregister-burst=2",
		"--aws-region=eu-west-1",
		"--aws-endpoint-url=https://elasticloadbalancing.eu-west-1.amazonaws.com",
		"--aws-call-timeout=3s",
		"--early-deregister",
		"--max-concurrent-holds=50",
		"--hold-margin=10s",
		"--fallback-after-failures=5",
		"--cluster-name=prod",
		"--discovery-refresh=1m",
		"--share-polls=false",
		"--peer-token-file=/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		HoldAddr:           ":8443",
		CertDir:            "/certs",
		ReleasePolicy:      release.PolicyDraining,
		SettleTime:         45 * time.Second,
		PollInterval:       2 * time.Second,
		APIRate:            2.5,
		APIBurst:           4,
		DeregisterRate:     0.5,
		DeregisterBurst:    2,
		AWSRegion:          "eu-west-1",
		AWSEndpointURL:     "https://elasticloadbalancing.eu-west-1.amazonaws.com",
		AWSCallTimeout:     3 * time.Second,
		EarlyDeregister:    true,
		MaxConcurrentHolds: 50,
		HoldMargin:         10 * time.Second,
		FallbackAfter:      5,
		ClusterName:        "prod",
		DiscoveryRefresh:   time.Minute,
		Peers:              PeersConfig{TokenFile: "/token"},
	}
	if diff := cmp.Diff(want, c, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("parsed config (-want +got):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	o := c.ClientOptions(nil)
	budgets := map[string][2]float64{
		"Describe": {float64(o.Describe.Limit()), float64(o.Describe.Burst())},
		"Change":   {float64(o.Change.Limit()), float64(o.Change.Burst())},
	}
	if diff := cmp.Diff(map[string][2]float64{"Describe": {2.5, 4}, "Change": {0.5, 2}}, budgets); diff != "" {
		t.Errorf("client budgets (-want +got):\n%s", diff)
	}
}

func TestBadPolicyFlag(t *testing.T) {
	c := NewConfig()
	fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.BindFlags(fs)
	if err := fs.Parse([]string{"--release-policy=healthy"}); err == nil {
		t.Error("unknown release policy accepted")
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{ReleasePolicy: release.PolicyDraining, HoldMargin: -1}
	err := c.Validate()
	if err == nil {
		t.Fatal("zero config validated")
	}
	for _, flagName := range []string{
		"hold-bind-address", "settle-time", "poll-interval", "aws-api-qps", "aws-api-burst", "aws-deregister-qps", "aws-deregister-burst",
		"max-concurrent-holds", "hold-margin", "fallback-after-failures", "discovery-refresh",
	} {
		if !strings.Contains(err.Error(), flagName) {
			t.Errorf("Validate error does not mention %s: %v", flagName, err)
		}
	}
}
