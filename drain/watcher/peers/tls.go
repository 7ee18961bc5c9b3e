package peers

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/albdrain/albdrain/certs/tlspolicy"
)

// peerDeadAfter is how long a replica's silence (no connection, no
// handshake, no answer to a ping) takes to count as its death: far longer
// than a call between two pods takes, far shorter than a poll interval.
const peerDeadAfter = 2 * time.Second

// NewHTTPClient returns the client replicas reach each other with: it
// verifies a peer's certificate for serverName (the hold Service's name,
// which every replica's certificate carries) against the CA bundle in
// caFile, re-read when the file changes so a rotated CA is followed.
func NewHTTPClient(caFile, serverName string) *http.Client {
	roots := &caFileRoots{path: caFile}
	cfg := &tls.Config{
		// Verification is VerifyConnection's, against the current bundle.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			pool, err := roots.pool()
			if err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("peer sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: serverName, Roots: pool, Intermediates: inter})
			return err
		},
	}
	tlspolicy.Apply(cfg)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: cfg, ForceAttemptHTTP2: true, IdleConnTimeout: time.Minute,
		// A replica that died without closing its connections (its node
		// failed) fails the reads waiting on it within seconds, so readers
		// poll for themselves rather than wait out their bound.
		DialContext:         (&net.Dialer{Timeout: peerDeadAfter}).DialContext,
		TLSHandshakeTimeout: peerDeadAfter,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: peerDeadAfter, PingTimeout: peerDeadAfter},
	}}
}

type caFileRoots struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	cached  *x509.CertPool
}

func (r *caFileRoots) pool() (*x509.CertPool, error) {
	st, err := os.Stat(r.path)
	if err != nil {
		return nil, fmt.Errorf("peer CA: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cached != nil && st.ModTime().Equal(r.modTime) {
		return r.cached, nil
	}
	pem, err := os.ReadFile(r.path)
	if err != nil {
		return nil, fmt.Errorf("peer CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("peer CA %s: no certificate", r.path)
	}
	r.cached, r.modTime = pool, st.ModTime()
	return pool, nil
}
