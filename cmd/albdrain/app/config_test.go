package app

import (
	"flag"
	"testing"
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
