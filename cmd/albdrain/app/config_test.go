package app

import (
	"flag"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHoldCertDirFollowsWebhook: the hold endpoint serves the certificate
// written to the webhook's directory unless --hold-cert-dir names another,
// so moving the webhook's directory alone moves both.
func TestHoldCertDirFollowsWebhook(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"defaults", nil, "/tmp/k8s-webhook-server/serving-certs"},
		{"webhook's moved", []string{"--webhook-cert-dir=/certs"}, "/certs"},
		{"hold's own", []string{"--webhook-cert-dir=/certs", "--hold-cert-dir=/hold-certs"}, "/hold-certs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
			c.BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if got := c.drainConfig().CertDir; got != tc.want {
				t.Errorf("hold endpoint reads %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPeerAddresses(t *testing.T) {
	for _, tc := range []struct {
		name, url, hold, podIP string
		wantName, wantAddr     string
	}{
		{"chart", "https://albdrain.albdrain.svc:8443", ":8443", "10.1.2.3", "albdrain.albdrain.svc", "10.1.2.3:8443"},
		{"bound to an address", "https://127.0.0.1:9443", "127.0.0.1:9443", "", "127.0.0.1", "127.0.0.1:9443"},
		{"no pod IP", "https://albdrain.albdrain.svc:8443", ":8443", "", "albdrain.albdrain.svc", ""},
		{"plain http", "http://albdrain:8080", ":8080", "10.1.2.3", "", "10.1.2.3:8080"},
		{"IPv6 pod", "https://albdrain.albdrain.svc:8443", "[::]:8443", "fd00::5", "albdrain.albdrain.svc", "[fd00::5]:8443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, addr := peerAddresses(tc.url, tc.hold, tc.podIP)
			got := [2]string{name, ""}
			if addr.IsValid() {
				got[1] = addr.String()
			}
			if d := cmp.Diff([2]string{tc.wantName, tc.wantAddr}, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
