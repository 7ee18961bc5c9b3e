package helper

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// maxTrustFile bounds what is read of a trust file: a token is about 1 KiB
// and a bundle a few CAs.
const maxTrustFile = 64 << 10

// newClient builds the client of one attempt, trusting the watcher's CA
// bundle as the trust volume holds it now: the kubelet replaces the file
// when albdrain's CA changes, so a client built for the next attempt trusts
// the new CA. It dials from the pod IP, when known, because the watcher also
// checks that a caller's source address is the pod's. Keep-alives are off
// so every retry opens a new connection the Service can route to a live
// replica. timeout bounds the dial (name resolution included) and,
// separately, the TLS handshake.
func newClient(env Env, timeout time.Duration) (*http.Client, error) {
	dialer := &net.Dialer{Timeout: timeout}
	if env.PodIP.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: env.PodIP.AsSlice()}
	}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: timeout,
		DisableKeepAlives:   true,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
	}
	pool, err := watcherRoots(env)
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig.RootCAs = pool
	return &http.Client{Transport: tr}, nil
}

// watcherRoots is the CA bundle of the trust volume plus the CA a pod
// injected before it carries in its environment; nil (the system roots)
// when there is neither.
func watcherRoots(env Env) (*x509.CertPool, error) {
	bundle, err := readTrustFile(env, contract.CABundleFile)
	if err != nil {
		return nil, fmt.Errorf("watcher CA bundle: %w", err)
	}
	var pool *x509.CertPool
	for _, src := range []struct{ name, pem string }{{"watcher CA bundle", bundle}, {"watcher CA", env.WatcherCA}} {
		if src.pem == "" {
			continue
		}
		if pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(src.pem)) {
			return nil, fmt.Errorf("%s: no certificate in PEM", src.name)
		}
	}
	return pool, nil
}

// token is the pod's bound ServiceAccount token, "" when the pod has no
// trust volume (injected before it).
func token(env Env) (string, error) {
	t, err := readTrustFile(env, contract.TokenFile)
	if err != nil {
		return "", fmt.Errorf("pod token: %w", err)
	}
	return strings.TrimSpace(t), nil
}

// readTrustFile reads name from the trust volume; a missing file or volume
// reads as "".
func readTrustFile(env Env, name string) (string, error) {
	if env.TrustDir == "" {
		return "", nil
	}
	f, err := os.Open(filepath.Join(env.TrustDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTrustFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxTrustFile {
		return "", fmt.Errorf("%s: larger than %d bytes", name, maxTrustFile)
	}
	return string(b), nil
}

// untrusted reports whether err is the watcher's certificate signed by a CA
// the pod does not trust, which a CA bundle the kubelet has yet to renew
// explains; a certificate for another name or an expired one is not.
func untrusted(err error) bool {
	var unknown x509.UnknownAuthorityError
	return errors.As(err, &unknown)
}
