package helper

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/internal/contract"
)

// trustDir writes a trust volume's files as the kubelet would.
func trustDir(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	writeTrust(t, dir, files)
	return dir
}

// writeTrust replaces files atomically, as the kubelet's projection does.
// It may run outside the test's goroutine, so it reports with Error.
func writeTrust(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

func certPEM(srv *httptest.Server) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// otherCA is a CA that signed none of the servers' certificates (every
// httptest server presents the same one).
func otherCA(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "albdrain-ca-old"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestTokenReadAtEachAttempt: the kubelet renews the token while the pod
// runs, so each attempt sends the token as the file holds it then.
func TestTokenReadAtEachAttempt(t *testing.T) {
	dir := trustDir(t, map[string]string{contract.TokenFile: "first\n"})
	var mu sync.Mutex
	var got []string
	_, url := startWatcher(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		if n == 1 {
			writeTrust(t, dir, map[string]string{contract.TokenFile: "renewed"})
			http.Error(w, "retry", http.StatusServiceUnavailable)
			return
		}
		answerOutcome(w, contract.OutcomeDeregistered)
	})
	env := podEnv(url)
	env.TrustDir = dir
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Minute), env, quietOpts(t))
	if res.Outcome != contract.OutcomeDeregistered {
		t.Errorf("outcome %q, want deregistered", res.Outcome)
	}
	mu.Lock()
	defer mu.Unlock()
	if d := cmp.Diff([]string{"Bearer first", "Bearer renewed"}, got); d != "" {
		t.Errorf("Authorization headers (-want +got):\n%s", d)
	}
}

// TestRefusedTokenFallsBack: a token the watcher does not accept is final;
// the helper sleeps its fallback at once rather than retry or hold on.
func TestRefusedTokenFallsBack(t *testing.T) {
	f, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "token not accepted for albdrain", http.StatusUnauthorized)
	})
	env := podEnv(url)
	env.TrustDir = trustDir(t, map[string]string{contract.TokenFile: "expired"})
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Millisecond), env, quietOpts(t))
	if res.Outcome != contract.OutcomeFallback {
		t.Errorf("outcome %q, want fallback", res.Outcome)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 1 {
		t.Errorf("%d requests, want 1", len(f.requests))
	}
}

// acceptCounter counts connections accepted, including those whose TLS
// handshake the client then fails.
type acceptCounter struct {
	net.Listener
	accepted chan struct{}
}

func (l *acceptCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.accepted <- struct{}{}:
		default:
		}
	}
	return c, err
}

// startTLSWatcher serves the fake watcher over TLS, saying when a
// connection arrives.
func startTLSWatcher(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) (*httptest.Server, <-chan struct{}) {
	srv := httptest.NewUnstartedServer(&fakeWatcher{answer: answer})
	accepted := make(chan struct{}, 1)
	srv.Listener = &acceptCounter{Listener: srv.Listener, accepted: accepted}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, accepted
}

// TestCAChangeWaitsForTheRenewedBundle: the watcher's CA changed and the
// pod's bundle still holds the old one. The helper keeps trying, reading the
// bundle afresh each time, and holds through the watcher once the kubelet has
// written the new bundle, instead of falling back after MaxFailures.
func TestCAChangeWaitsForTheRenewedBundle(t *testing.T) {
	srv, accepted := startTLSWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerOutcome(w, contract.OutcomeDeregistered)
	})
	old := otherCA(t)
	dir := trustDir(t, map[string]string{contract.CABundleFile: old})
	go func() {
		// Renew the bundle only after more failed handshakes than
		// MaxFailures allows.
		for range quietOpts(t).MaxFailures + 1 {
			<-accepted
		}
		writeTrust(t, dir, map[string]string{contract.CABundleFile: certPEM(srv) + old})
	}()
	env := podEnv(srv.URL)
	env.TrustDir = dir
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Minute), env, quietOpts(t))
	if res.Outcome != contract.OutcomeDeregistered {
		t.Errorf("outcome %q, want deregistered", res.Outcome)
	}
}

// TestUntrustedBeyondCAWaitFallsBack: a certificate that stays untrusted
// beyond CAWait counts as a failure, so the hold falls back in bounded time.
func TestUntrustedBeyondCAWaitFallsBack(t *testing.T) {
	srv, _ := startTLSWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerOutcome(w, contract.OutcomeDeregistered)
	})
	env := podEnv(srv.URL)
	env.TrustDir = trustDir(t, map[string]string{contract.CABundleFile: otherCA(t)})
	opts := quietOpts(t)
	opts.CAWait = 20 * time.Millisecond
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Millisecond), env, opts)
	if res.Outcome != contract.OutcomeFallback {
		t.Errorf("outcome %q, want fallback", res.Outcome)
	}
}

// TestLegacyEnvCAStillTrusted: a pod injected before the trust volume has
// its CA in the environment only, and still reaches the watcher.
func TestLegacyEnvCAStillTrusted(t *testing.T) {
	srv, _ := startTLSWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerOutcome(w, contract.OutcomeDeregistered)
	})
	env := podEnv(srv.URL)
	env.WatcherCA = certPEM(srv)
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Minute), env, quietOpts(t))
	if res.Outcome != contract.OutcomeDeregistered {
		t.Errorf("outcome %q, want deregistered", res.Outcome)
	}
}
