package certs

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// issue makes the Secret hold a CA and a serving certificate that stay
// valid for cr's lookahead, keeping a CA that is still good: what the
// rotator does on its first run, done before the manager starts so the
// servers find a certificate. Replicas starting together race here; the
// loser's update conflicts, and on the retry it adopts the winner's.
func issue(ctx context.Context, r client.Reader, w client.Writer, cr *rotator.CertRotator) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var s corev1.Secret
		if err := r.Get(ctx, cr.SecretKey, &s); err != nil {
			return fmt.Errorf("read certificate Secret %s: %w", cr.SecretKey, err)
		}
		at := time.Now().Add(cr.LookaheadInterval)
		caPEM, caKeyPEM := s.Data[CACertFile], s.Data[CAKeyFile]
		caOK, _ := rotator.ValidCert(caPEM, caPEM, caKeyPEM, cr.CAName, nil, at)
		if ok, _ := rotator.ValidCert(caPEM, s.Data[CertFile], s.Data[KeyFile], cr.DNSName, cr.ExtKeyUsages, at); caOK && ok {
			return nil
		}
		now := time.Now()
		// Backdated like the rotator's, for nodes whose clocks lag.
		begin := now.Add(-time.Hour)
		var ca *rotator.KeyPairArtifacts
		if caOK {
			ca, caOK = parseCA(caPEM, caKeyPEM)
		}
		if !caOK {
			var err error
			if ca, err = cr.CreateCACert(begin, now.Add(cr.CaCertDuration)); err != nil {
				return err
			}
		}
		cert, key, err := cr.CreateCertPEM(ca, begin, now.Add(cr.ServerCertDuration))
		if err != nil {
			return err
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[CACertFile], s.Data[CAKeyFile] = ca.CertPEM, ca.KeyPEM
		s.Data[CertFile], s.Data[KeyFile] = cert, key
		if err := w.Update(ctx, &s); err != nil {
			return fmt.Errorf("write certificate Secret %s: %w", cr.SecretKey, err)
		}
		return nil
	})
}

// parseCA reads a CA back the way the rotator does, which takes only PKCS#1
// keys (the kind it writes); false means the CA has to be replaced.
func parseCA(certPEM, keyPEM []byte) (*rotator.KeyPairArtifacts, bool) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, false
	}
	cert, err1 := x509.ParseCertificate(cb.Bytes)
	key, err2 := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	return &rotator.KeyPairArtifacts{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, true
}
