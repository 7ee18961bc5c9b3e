package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

var testCfg = Config{Rotate: true, SecretName: "albdrain-certs", SecretNamespace: "albdrain", WebhookConfigName: "albdrain", DNSName: "albdrain.albdrain.svc"}

func emptySecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: testCfg.SecretName, Namespace: testCfg.SecretNamespace}}
}

func newTestRotator() *rotator.CertRotator {
	return newRotator(testCfg, "", "cert-rotator", make(chan struct{}))
}

func getSecret(t *testing.T, c client.Client) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(emptySecret()), &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// assertIssued checks the Secret holds what the rotator would accept
// without rotating: a CA and a serving certificate valid past the renewal
// horizon.
func assertIssued(t *testing.T, s *corev1.Secret) {
	t.Helper()
	at := time.Now().Add(renewBefore)
	d := s.Data
	if _, err := rotator.ValidCert(d[CACertFile], d[CACertFile], d[CAKeyFile], caName, nil, at); err != nil {
		t.Errorf("CA: %v", err)
	}
	if _, err := rotator.ValidCert(d[CACertFile], d[CertFile], d[KeyFile], testCfg.DNSName,
		&[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, at); err != nil {
		t.Errorf("serving certificate: %v", err)
	}
}

func TestIssueFillsTheEmptySecret(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(emptySecret()).Build()
	if err := issue(context.Background(), c, c, newTestRotator()); err != nil {
		t.Fatal(err)
	}
	assertIssued(t, getSecret(t, c))
}

func TestIssueLeavesValidCertificatesAlone(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(emptySecret()).Build()
	ctx := context.Background()
	if err := issue(ctx, c, c, newTestRotator()); err != nil {
		t.Fatal(err)
	}
	before := getSecret(t, c)
	if err := issue(ctx, c, c, newTestRotator()); err != nil {
		t.Fatal(err)
	}
	if after := getSecret(t, c); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("Secret rewritten (resourceVersion %s -> %s) though its certificates were valid", before.ResourceVersion, after.ResourceVersion)
	}
}

func TestIssueRenewsAnExpiringCertificateUnderTheSameCA(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(emptySecret()).Build()
	ctx := context.Background()
	cr := newTestRotator()
	if err := issue(ctx, c, c, cr); err != nil {
		t.Fatal(err)
	}
	s := getSecret(t, c)
	ca, ok := parseCA(s.Data[CACertFile], s.Data[CAKeyFile])
	if !ok {
		t.Fatal("issued CA does not parse")
	}
	// Valid now, but inside the renewal window.
	short, key, err := cr.CreateCertPEM(ca, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s.Data[CertFile], s.Data[KeyFile] = short, key
	if err := c.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := issue(ctx, c, c, cr); err != nil {
		t.Fatal(err)
	}
	renewed := getSecret(t, c)
	assertIssued(t, renewed)
	if bytes.Equal(renewed.Data[CertFile], short) {
		t.Error("expiring certificate was kept")
	}
	if !bytes.Equal(renewed.Data[CACertFile], s.Data[CACertFile]) {
		t.Error("CA replaced though it was valid: pods given the old CA would stop trusting the hold endpoint")
	}
}

func TestIssueReplacesACorruptCA(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(emptySecret()).Build()
	ctx := context.Background()
	if err := issue(ctx, c, c, newTestRotator()); err != nil {
		t.Fatal(err)
	}
	s := getSecret(t, c)
	oldCA := s.Data[CACertFile]
	s.Data[CACertFile] = []byte("garbage")
	if err := c.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := issue(ctx, c, c, newTestRotator()); err != nil {
		t.Fatal(err)
	}
	renewed := getSecret(t, c)
	assertIssued(t, renewed)
	if bytes.Equal(renewed.Data[CACertFile], oldCA) {
		t.Error("CA not replaced")
	}
}

func TestIssueNeedsTheSecret(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	err := issue(context.Background(), c, c, newTestRotator())
	if !apierrors.IsNotFound(err) {
		t.Fatalf("issue = %v, want the Secret's NotFound: the chart creates it, albdrain does not", err)
	}
}

// Two replicas starting on a fresh install both find the Secret empty; the
// one whose update conflicts must take the other's certificates, not
// overwrite them.
func TestIssueAdoptsTheCertificatesOfAReplicaThatWonTheRace(t *testing.T) {
	ctx := context.Background()
	var winner map[string][]byte
	updates := 0
	c := fake.NewClientBuilder().WithObjects(emptySecret()).WithInterceptorFuncs(interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			updates++
			if updates > 1 {
				return c.Update(ctx, obj, opts...)
			}
			// The other replica writes first, with certificates of its own.
			other := fake.NewClientBuilder().WithObjects(emptySecret()).Build()
			if err := issue(ctx, other, other, newTestRotator()); err != nil {
				return err
			}
			winner = getSecret(t, other).Data
			current := getSecret(t, c)
			current.Data = winner
			if err := c.Update(ctx, current); err != nil {
				return err
			}
			return apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, obj.GetName(), nil)
		},
	}).Build()
	if err := issue(ctx, c, c, newTestRotator()); err != nil {
		t.Fatal(err)
	}
	got := getSecret(t, c).Data
	if !bytes.Equal(got[CACertFile], winner[CACertFile]) || !bytes.Equal(got[CertFile], winner[CertFile]) {
		t.Error("the winner's certificates were overwritten")
	}
	if updates != 1 {
		t.Errorf("%d updates, want only the one that conflicted", updates)
	}
}

func TestParseCARejectsNonPKCS1Keys(t *testing.T) {
	ca, err := newTestRotator().CreateCACert(time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parseCA(ca.CertPEM, ca.KeyPEM); !ok {
		t.Fatal("the rotator's own CA does not parse")
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parseCA(ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})); ok {
		t.Error("a PKCS#8 CA key was accepted, though the rotator cannot sign with it")
	}
}
