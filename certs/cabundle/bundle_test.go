package cabundle

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// ca is a self-signed CA named name, valid from notBefore for a year.
func ca(t *testing.T, name string, notBefore time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notBefore.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func names(pemData []byte) []string {
	var out []string
	for _, c := range parse(pemData) {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

func TestMerge(t *testing.T) {
	day := 24 * time.Hour
	v1 := ca(t, "v1", now.Add(-300*day))
	v2 := ca(t, "v2", now.Add(-200*day))
	v3 := ca(t, "v3", now.Add(-100*day))
	v4 := ca(t, "v4", now.Add(-day))
	expired := ca(t, "expired", now.Add(-400*day))
	tests := []struct {
		name               string
		current, published []*x509.Certificate
		want               []string
	}{
		{"first publication", []*x509.Certificate{v1}, nil, []string{"v1"}},
		{"unchanged", []*x509.Certificate{v1}, []*x509.Certificate{v1}, []string{"v1"}},
		{"rotation keeps the replaced CA, newest first", []*x509.Certificate{v2}, []*x509.Certificate{v1}, []string{"v2", "v1"}},
		// A replica that has not yet seen the new CA writes what the one
		// that has wrote, so the two do not undo each other.
		{"a replica still on the old CA writes the same bundle", []*x509.Certificate{v1}, []*x509.Certificate{v2, v1}, []string{"v2", "v1"}},
		{"at most MaxCAs, the oldest dropped", []*x509.Certificate{v4}, []*x509.Certificate{v3, v2, v1}, []string{"v4", "v3", "v2"}},
		{"an expired CA dropped", []*x509.Certificate{v2}, []*x509.Certificate{expired, v1}, []string{"v2", "v1"}},
		{"current CAs all kept", []*x509.Certificate{v1, v2, v3, v4}, []*x509.Certificate{v1}, []string{"v4", "v3", "v2", "v1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := merge(tc.current, tc.published, now)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, names(got)); d != "" {
				t.Errorf("bundle (-want +got):\n%s", d)
			}
		})
	}
	if _, err := merge(nil, []*x509.Certificate{v1}, now); err == nil {
		t.Error("merge without a current CA: want an error")
	}
}

func TestParseSkipsWhatIsNotACertificate(t *testing.T) {
	got := names([]byte("garbage\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nnot DER\n-----END CERTIFICATE-----\n"))
	if len(got) != 0 {
		t.Errorf("parse = %v, want nothing", got)
	}
}
