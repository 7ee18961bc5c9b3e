package faults_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/e2e/testcert"
	"github.com/albdrain/albdrain/internal/contract"
)

// TestCAChange: the hold endpoint's CA is replaced (a rotation, or a
// reinstall with a new certificate) while pods created before the change
// terminate, then pods created after it. Pods trust the CA bundle albdrain
// publishes in their namespace, which the kubelet renews in their trust
// volume; meanwhile the helper re-reads it. No hold falls back: every one
// ends through the watcher, counted and with its event.
func TestCAChange(t *testing.T) {
	ctx := context.Background()
	certDir := t.TempDir()
	host, _, err := net.SplitHostPort(shared.Albdrain.HoldAddr())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(certDir, "ca.crt")
	newCA := func() string {
		t.Helper()
		// Written beside the live files and renamed into place, as the
		// kubelet updates a mounted Secret: key and certificate, then the CA.
		stage := t.TempDir()
		if err := testcert.WriteServingCert(stage, net.ParseIP(host)); err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct{ from, to string }{{"tls.key", "tls.key"}, {"tls.crt", "tls.crt"}} {
			if err := os.Rename(filepath.Join(stage, f.from), filepath.Join(certDir, f.to)); err != nil {
				t.Fatal(err)
			}
		}
		crt, err := os.ReadFile(filepath.Join(certDir, "tls.crt"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stage, "ca.crt"), crt, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(stage, "ca.crt"), caFile); err != nil {
			t.Fatal(err)
		}
		return string(crt)
	}
	first := newCA()
	restore, err := shared.Albdrain.RestartWithHoldCert(ctx, certDir, caFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restore(ctx); err != nil {
			t.Errorf("restore albdrain: %v", err)
		}
	})

	var second string
	var before, after []corev1.Pod
	res := runCustom(t, scenario.Custom{
		Name:     "ca-change",
		Replicas: 2,
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			var err error
			if before, err = s.Pods(ctx); err != nil {
				return err
			}
			s.Progressf("replacing the hold endpoint's CA")
			second = newCA()
			if err := s.RollingRestart(ctx); err != nil {
				return err
			}
			if err := s.Poll(ctx, "every pod created before the change to terminate", allTerminated(s, before)); err != nil {
				return err
			}
			if err := s.WaitSettled(ctx); err != nil {
				return err
			}
			if after, err = s.Pods(ctx); err != nil {
				return err
			}
			if err := s.RollingRestart(ctx); err != nil {
				return err
			}
			return s.Poll(ctx, "every pod created after the change to terminate", allTerminated(s, after))
		},
	})
	hooks := checkBounded(t, res, len(before)+len(after))
	// A pod that waited for its bundle may reach the watcher after its
	// target has left: deregistered (its readiness gate says it was
	// registered); or after the hold's bound, which leaves the application
	// its share of the grace period: timeout. Fallback is not allowed.
	checkOutcomes(t, res, contract.OutcomeQuiet, contract.OutcomeDeregistered, contract.OutcomeTimeout)
	checkNoFailures(t, res)
	if len(before) != 2 || len(after) != 2 {
		t.Errorf("%d pods before the change and %d after, want 2 and 2", len(before), len(after))
	}
	waited := 0
	for _, h := range hooks {
		if strings.Contains(h.Output, "not trusted yet") {
			waited++
		}
	}
	t.Logf("%d of %d helpers met the new certificate before the kubelet renewed their bundle, and waited for it", waited, len(hooks))

	// The published bundle holds the new CA and the one it replaced.
	var cm corev1.ConfigMap
	if err := shared.Env.Client.Get(ctx, types.NamespacedName{Namespace: res.Namespace, Name: contract.CABundleConfigMap}, &cm); err != nil {
		t.Fatal(err)
	}
	got := bundleSubjects(t, cm.Data[contract.CABundleFile])
	for name, ca := range map[string]string{"new": second, "replaced": first} {
		if want := bundleSubjects(t, ca); len(want) != 1 || !strings.Contains(strings.Join(got, "\n"), want[0]) {
			t.Errorf("published bundle %q lacks the %s CA %q", got, name, want)
		}
	}
}

// bundleSubjects lists a PEM bundle's certificates by public key, which
// tells apart two self-signed certificates of the same name.
func bundleSubjects(t *testing.T, bundle string) []string {
	t.Helper()
	var out []string
	rest := []byte(bundle)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(c.RawSubjectPublicKeyInfo))
	}
}
