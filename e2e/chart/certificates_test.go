package chart

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/certs"
)

// mountSecret plays the kubelet for the chart's certificate volume: it
// projects the Secret's data into dir the way a secret volume is updated,
// files as links into a ..data directory that is swapped atomically.
func mountSecret(t *testing.T, c client.Client, key client.ObjectKey, dir string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		seen, generation := "", 0
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var s corev1.Secret
			if err := c.Get(ctx, key, &s); err == nil && s.ResourceVersion != seen {
				generation++
				if err := project(dir, generation, s.Data); err != nil {
					t.Errorf("project Secret: %v", err)
					return
				}
				seen = s.ResourceVersion
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

func project(dir string, generation int, data map[string][]byte) error {
	gen := fmt.Sprintf("..%d", generation)
	if err := os.Mkdir(filepath.Join(dir, gen), 0o755); err != nil {
		return err
	}
	for name, b := range data {
		if err := os.WriteFile(filepath.Join(dir, gen, name), b, 0o440); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for name := range data {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				return err
			}
		}
	}
	if generation > 1 {
		return os.RemoveAll(filepath.Join(dir, fmt.Sprintf("..%d", generation-1)))
	}
	return nil
}

// certChecks observes the certificates the manager keeps in the chart's
// Secret and webhook configuration.
type certChecks struct {
	c           client.Client
	secret      client.ObjectKey
	webhookName string
	webhookPort int
}

func (cc *certChecks) data(t *testing.T) map[string][]byte {
	t.Helper()
	var s corev1.Secret
	if err := cc.c.Get(context.Background(), cc.secret, &s); err != nil {
		t.Fatal(err)
	}
	return s.Data
}

func (cc *certChecks) ca(t *testing.T) []byte { return cc.data(t)[certs.CACertFile] }

func (cc *certChecks) caBundle(t *testing.T) []byte {
	t.Helper()
	var wh admissionv1.MutatingWebhookConfiguration
	if err := cc.c.Get(context.Background(), client.ObjectKey{Name: cc.webhookName}, &wh); err != nil {
		t.Fatal(err)
	}
	return wh.Webhooks[0].ClientConfig.CABundle
}

var serverAuth = &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}

// validFor reports whether the Secret's serving certificate is good until
// at for the webhook's host, under the Secret's CA.
func validFor(d map[string][]byte, at time.Time) bool {
	ok, _ := rotator.ValidCert(d[certs.CACertFile], d[certs.CertFile], d[certs.KeyFile], webhookHost, serverAuth, at)
	return ok
}

// servedUnder reports whether the webhook server presents a certificate
// that ca verifies, and returns its expiry.
func (cc *certChecks) servedUnder(ca []byte) (time.Time, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return time.Time{}, fmt.Errorf("no CA in %q", ca)
	}
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(cc.webhookPort), &tls.Config{RootCAs: pool, ServerName: webhookHost})
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].NotAfter, nil
}

func (cc *certChecks) issued(t *testing.T) {
	d := cc.data(t)
	if !validFor(d, time.Now().Add(30*24*time.Hour)) {
		t.Fatal("the Secret holds no serving certificate valid for the coming month")
	}
	block, _ := pem.Decode(d[certs.CACertFile])
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("ca.crt is not a CA certificate (%v)", err)
	}
	eventually(t, "the CA in the webhook configuration", func() (bool, error) {
		return bytes.Equal(cc.caBundle(t), d[certs.CACertFile]), nil
	}, nil)
	if _, err := cc.servedUnder(d[certs.CACertFile]); err != nil {
		t.Fatalf("webhook server's certificate does not verify under the issued CA: %v", err)
	}
}

// renewsExpiring puts a certificate that expires within the renewal window
// into the Secret, as time would, and expects a fresh one under the same CA,
// served without a restart.
func (cc *certChecks) renewsExpiring(t *testing.T) {
	ctx := context.Background()
	var s corev1.Secret
	if err := cc.c.Get(ctx, cc.secret, &s); err != nil {
		t.Fatal(err)
	}
	ca := s.Data[certs.CACertFile]
	short := shortLived(t, s.Data)
	s.Data[certs.CertFile], s.Data[certs.KeyFile] = short[certs.CertFile], short[certs.KeyFile]
	if err := cc.c.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	horizon := time.Now().Add(30 * 24 * time.Hour)
	eventually(t, "the expiring certificate to be renewed", func() (bool, error) {
		d := cc.data(t)
		return !bytes.Equal(d[certs.CertFile], short[certs.CertFile]) && validFor(d, horizon), nil
	}, nil)
	if !bytes.Equal(cc.ca(t), ca) {
		t.Error("renewing the serving certificate replaced the CA, which pods were given")
	}
	var notAfter time.Time
	eventually(t, "the server to present the renewed certificate", func() (bool, error) {
		var err error
		notAfter, err = cc.servedUnder(ca)
		return err == nil && notAfter.After(horizon), nil
	}, func() string { return "serving a certificate expiring " + notAfter.String() })
}

// shortLived returns a certificate and key for the webhook's host, signed by
// the Secret's CA, that expire in an hour.
func shortLived(t *testing.T, d map[string][]byte) map[string][]byte {
	t.Helper()
	cb, _ := pem.Decode(d[certs.CACertFile])
	kb, _ := pem.Decode(d[certs.CAKeyFile])
	caCert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cr := &rotator.CertRotator{DNSName: webhookHost, ExtKeyUsages: serverAuth}
	ca := &rotator.KeyPairArtifacts{Cert: caCert, Key: caKey, CertPEM: d[certs.CACertFile], KeyPEM: d[certs.CAKeyFile]}
	cert, key, err := cr.CreateCertPEM(ca, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{certs.CertFile: cert, certs.KeyFile: key}
}

// replacesBrokenCA corrupts the CA, as a bad edit or restore would, and
// expects a new CA in the Secret and the webhook configuration and a server
// presenting a certificate under it.
func (cc *certChecks) replacesBrokenCA(t *testing.T) {
	ctx := context.Background()
	var s corev1.Secret
	if err := cc.c.Get(ctx, cc.secret, &s); err != nil {
		t.Fatal(err)
	}
	old := s.Data[certs.CACertFile]
	s.Data[certs.CACertFile] = []byte("not a certificate")
	if err := cc.c.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	var ca []byte
	eventually(t, "a new CA and certificate", func() (bool, error) {
		d := cc.data(t)
		ca = d[certs.CACertFile]
		return !bytes.Equal(ca, old) && validFor(d, time.Now().Add(30*24*time.Hour)), nil
	}, nil)
	eventually(t, "the new CA in the webhook configuration", func() (bool, error) {
		return bytes.Equal(cc.caBundle(t), ca), nil
	}, nil)
	var last error
	eventually(t, "the server to present a certificate under the new CA", func() (bool, error) {
		_, last = cc.servedUnder(ca)
		return last == nil, nil
	}, func() string { return fmt.Sprint(last) })
}
