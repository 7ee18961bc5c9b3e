// Package watcher is the manager's side of a hold: it holds each terminating
// pod's preStop until ELBv2 reports the pod's target out of service in every
// target group it belongs to. Setup adds it to a controller-runtime manager;
// the in-pod side is package drain/helper.
package watcher

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/drain/watcher/release"
)

// Config is the watcher's configuration. Bind it to flags with BindFlags,
// then check it with Validate.
type Config struct {
	// HoldAddr is where the hold endpoint listens.
	HoldAddr string
	// CertDir holds tls.crt and tls.key for the hold endpoint; empty serves
	// plain HTTP (the helper's requests then cross the pod network
	// unencrypted). Its flag's default, empty, is the manager's word for
	// "the webhook's directory": package app fills that in.
	CertDir string
	// ReleasePolicy is when a target counts as out of service.
	ReleasePolicy release.Policy
	// SettleTime is how long a target must drain under the "draining" policy.
	SettleTime time.Duration
	// PollInterval is how often each watched target group is polled.
	PollInterval time.Duration
	// APIRate and APIBurst are the client-side token bucket for ELBv2
	// Describe* calls, shared with the load balancer controller's budget.
	APIRate  float64
	APIBurst int
	// DeregisterRate and DeregisterBurst are the client-side token bucket
	// for DeregisterTargets (early deregistration), shared with the load
	// balancer controller's budget for changes.
	DeregisterRate  float64
	DeregisterBurst int
	// AWSRegion overrides the region the SDK would resolve.
	AWSRegion string
	// AWSEndpointURL overrides the ELBv2 endpoint.
	AWSEndpointURL string
	// AWSCallTimeout bounds every ELBv2 call, its retries included.
	AWSCallTimeout time.Duration
	// EarlyDeregister deregisters a terminating pod's targets at the start
	// of its hold rather than waiting for the load balancer controller.
	EarlyDeregister bool
	// MaxConcurrentHolds bounds holds in progress per replica.
	MaxConcurrentHolds int
	// HoldMargin is added to a target group's deregistration delay to bound a hold.
	HoldMargin time.Duration
	// FallbackAfter is how many consecutive failed polls of a target group
	// end a hold in fallback.
	FallbackAfter int
	// ClusterName is the elbv2.k8s.aws/cluster tag value of this cluster's
	// target groups, for discovery by tags where the TargetGroupBinding CRD
	// is absent.
	ClusterName string
	// DiscoveryRefresh is how long target-group tags and attributes are cached.
	DiscoveryRefresh time.Duration
	// Peers configures the replicas' shared polling of target groups.
	Peers PeersConfig
}

// PeersConfig configures the replicas' shared polling (package peers).
// Its last four fields are manager-wide facts package app fills in.
type PeersConfig struct {
	// Share polls each target group from one replica for all.
	Share bool
	// TokenFile holds this replica's token for albdrain's audience.
	TokenFile string
	// ServerName is the name every replica's hold certificate carries (the
	// hold Service's), and CAFile the bundle that verifies it.
	ServerName, CAFile string
	// Namespace holds the replicas' peer Leases.
	Namespace string
	// Advertise is where the others reach this replica's hold endpoint.
	Advertise netip.AddrPort
}

// NewConfig returns a Config with the defaults, the ones BindFlags sets.
func NewConfig() Config {
	var c Config
	c.BindFlags(flag.NewFlagSet("defaults", flag.ContinueOnError))
	return c
}

// BindFlags sets c to the defaults and registers its flags on fs. The
// default API rate is a tenth of the load balancer controller's own
// Describe* budget (50/s, burst 200), and the default deregistration rate a
// quarter of its budget for changes (4/s, burst 20): the account shares both.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HoldAddr, "hold-bind-address", ":8443", "address the hold endpoint listens on")
	fs.StringVar(&c.CertDir, "hold-cert-dir", "", "directory with the hold endpoint's tls.crt and tls.key (reloaded on change); empty follows --webhook-cert-dir")
	c.ReleasePolicy = release.PolicyQuiet
	fs.Func("release-policy", `when a pod is released: "quiet" (its target draining, unused or absent in every target group, then no load-balancer traffic for the pod's quiet period), "deregistered" (absent or unused) or "draining" (draining for --settle-time) (default "quiet")`, func(s string) error {
		p, err := release.ParsePolicy(s)
		c.ReleasePolicy = p
		return err
	})
	fs.DurationVar(&c.SettleTime, "settle-time", 30*time.Second, "how long a target must drain before release under --release-policy=draining")
	fs.DurationVar(&c.PollInterval, "poll-interval", 5*time.Second, "how often each target group with waiting holds is polled (one DescribeTargetHealth for all its held pods)")
	fs.Float64Var(&c.APIRate, "aws-api-qps", 5, "client-side limit on ELBv2 Describe* requests per second (the account's budget is shared with the load balancer controller)")
	fs.IntVar(&c.APIBurst, "aws-api-burst", 10, "burst of the client-side ELBv2 Describe* limit")
	fs.Float64Var(&c.DeregisterRate, "aws-deregister-qps", 1, "client-side limit on ELBv2 DeregisterTargets requests per second, for --early-deregister (the account's budget is shared with the load balancer controller)")
	fs.IntVar(&c.DeregisterBurst, "aws-deregister-burst", 5, "burst of the client-side ELBv2 DeregisterTargets limit")
	fs.StringVar(&c.AWSRegion, "aws-region", "", "AWS region; empty uses AWS_REGION, AWS_DEFAULT_REGION or the shared config file (the SDK does not read it from instance metadata); albdrain refuses to start without one")
	fs.StringVar(&c.AWSEndpointURL, "aws-endpoint-url", "", "ELBv2 endpoint URL override (a VPC endpoint or an emulator)")
	fs.DurationVar(&c.AWSCallTimeout, "aws-call-timeout", elbv2.DefaultCallTimeout, "bound on every ELBv2 call, the SDK's retries included: a call that hangs fails like any other, so polling goes on and holds reach their fallback")
	fs.BoolVar(&c.EarlyDeregister, "early-deregister", false, "deregister a terminating pod's targets when its hold starts instead of waiting for the load balancer controller")
	fs.IntVar(&c.MaxConcurrentHolds, "max-concurrent-holds", 1000, "holds one replica serves at once; more are refused and retried by the helper")
	fs.DurationVar(&c.HoldMargin, "hold-margin", 30*time.Second, "added to a target group's deregistration delay to bound a hold")
	fs.IntVar(&c.FallbackAfter, "fallback-after-failures", 3, "consecutive failed polls of a target group (after the SDK's own retries) that end a hold with the fixed-sleep fallback")
	fs.StringVar(&c.ClusterName, "cluster-name", "", "value of the elbv2.k8s.aws/cluster tag on this cluster's target groups, for discovery by tags when the TargetGroupBinding CRD is absent")
	fs.BoolVar(&c.Peers.Share, "share-polls", true, "poll each target group with holds from one replica for all replicas (found through Leases in the manager's namespace), so the Describe* budget pays once per group whatever the number of replicas; a replica that cannot read another's poll, or is stopping, polls for itself (see the README's \"The ELBv2 budget\")")
	fs.StringVar(&c.Peers.TokenFile, "peer-token-file", "/var/run/secrets/albdrain/peer/token", "this replica's token for albdrain's audience, which it presents to the other replicas for --share-polls")
	fs.DurationVar(&c.DiscoveryRefresh, "discovery-refresh", 5*time.Minute, "how long target-group tags, deregistration delays and settings (protocol, health check) are cached")
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.HoldAddr == "", "hold-bind-address is required")
	_, err := release.ParsePolicy(string(c.ReleasePolicy))
	errs = append(errs, err)
	check(c.ReleasePolicy == release.PolicyDraining && c.SettleTime <= 0, "settle-time must be positive with the draining policy")
	check(c.PollInterval <= 0, "poll-interval must be positive")
	check(c.AWSCallTimeout <= 0, "aws-call-timeout must be positive")
	check(c.APIRate <= 0, "aws-api-qps must be positive")
	check(c.APIBurst < 1, "aws-api-burst must be at least 1")
	check(c.DeregisterRate <= 0, "aws-deregister-qps must be positive")
	check(c.DeregisterBurst < 1, "aws-deregister-burst must be at least 1")
	check(c.MaxConcurrentHolds < 1, "max-concurrent-holds must be at least 1")
	check(c.HoldMargin < 0, "hold-margin must not be negative")
	check(c.FallbackAfter < 1, "fallback-after-failures must be at least 1")
	check(c.DiscoveryRefresh <= 0, "discovery-refresh must be positive")
	check(c.Peers.Share && c.Peers.TokenFile == "", "peer-token-file is required with --share-polls")
	return errors.Join(errs...)
}

// ClientOptions are the ELBv2 client's options the flags set: its endpoint,
// its time limit and its two call budgets, recording into m.
func (c Config) ClientOptions(m *metrics.Metrics) elbv2.ClientOptions {
	return elbv2.ClientOptions{
		Endpoint:    c.AWSEndpointURL,
		CallTimeout: c.AWSCallTimeout,
		Describe:    rate.NewLimiter(rate.Limit(c.APIRate), c.APIBurst),
		Change:      rate.NewLimiter(rate.Limit(c.DeregisterRate), c.DeregisterBurst),
		Metrics:     m,
	}
}
