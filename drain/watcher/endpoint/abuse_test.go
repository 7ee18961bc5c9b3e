package endpoint

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/albdrain/albdrain/certs/tlspolicy"
	"github.com/albdrain/albdrain/internal/contract"
)

// A client offering only TLS 1.2 suites outside the policy (CBC with SHA-1
// or SHA-256 MACs, RSA key exchange) must not get a session; one offering a
// policy suite, and TLS 1.3, must.
func TestTLSRefusesWeakCipherSuites(t *testing.T) {
	addr, _, caPEM := startTLS(t, newServer(t, newHolder(), 10))
	handshake := func(cfg *tls.Config) error {
		cfg.RootCAs = roots(caPEM)
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err == nil {
			conn.Close()
		}
		return err
	}
	weak := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	}
	for _, suite := range weak {
		err := handshake(&tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
		if err == nil {
			t.Errorf("TLS 1.2 handshake with %s succeeded", tls.CipherSuiteName(suite))
		}
	}
	for _, suite := range tlspolicy.CipherSuites {
		if !strings.Contains(tls.CipherSuiteName(suite), "ECDSA") {
			continue // the test certificate has an ECDSA key
		}
		if err := handshake(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}); err != nil {
			t.Errorf("TLS 1.2 handshake with %s: %v", tls.CipherSuiteName(suite), err)
		}
	}
	if err := handshake(&tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Errorf("TLS 1.3 handshake: %v", err)
	}
}

// A rotated certificate is served to new connections without a restart,
// while a hold already in progress on the old certificate goes on and ends
// normally: rotation costs no hold.
func TestCertificateRotatesWithoutDroppingHolds(t *testing.T) {
	h := newHolder()
	h.release = make(chan struct{})
	addr, dir, oldCA := startTLS(t, newServer(t, h, 10))
	inFlight := make(chan int, 1)
	go func() { inFlight <- statusOf(clientTrusting(oldCA), "https://"+addr, request()) }()
	<-h.calls

	newCA := writeCert(t, dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		// A second hold of the same pod, now over the new certificate; the
		// holder answers it once released, so probe the handshake alone.
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots(newCA)})
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated certificate was never served: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(h.release)
	if code := <-inFlight; code != http.StatusOK {
		t.Errorf("hold in progress during the rotation: status %d, want 200", code)
	}
	if resp, body := post(t, clientTrusting(newCA), "https://"+addr, request()); resp.StatusCode != http.StatusOK {
		t.Errorf("hold after the rotation: status %s (%s)", resp.Status, body)
	}
}

// A client that sends its headers and then trickles its body must not
// occupy a hold slot: slots are for holds of real pods, and any caller can
// open a connection.
func TestSlowRequestTakesNoHoldSlot(t *testing.T) {
	h := newHolder()
	entered := make(chan struct{}, 10)
	s := newServer(t, h, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		s.ServeHTTP(w, r)
	}))
	defer srv.Close()

	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.4.9")}}).Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"namespace\":", contract.HoldPath)
	<-entered // the slow request is in the handler, reading its body

	resp, body := post(t, clientFrom(podIP), srv.URL, request())
	if resp.StatusCode != http.StatusOK {
		t.Errorf("hold while a slow request is pending: status %s (%s), want 200", resp.Status, body)
	}
}

// The deadline a caller asks for cannot be pushed past the longest hold
// albdrain knows, nor wrap around: a hold is always bounded.
func TestRequestedTimeoutIsBounded(t *testing.T) {
	h := newHolder()
	srv := httptest.NewServer(newServer(t, h, 10))
	defer srv.Close()
	for _, ms := range []int64{contract.MaxHoldTimeout.Milliseconds() + 1, math.MaxInt64 / 1000, math.MaxInt64} {
		req := request()
		req.TimeoutMillis = ms
		if resp, body := post(t, clientFrom(podIP), srv.URL, req); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("timeoutMillis %d: status %s (%s), want 400", ms, resp.Status, body)
		}
	}
	if len(h.calls) != 0 {
		t.Errorf("%d unbounded requests reached the holder", len(h.calls))
	}
	req := request()
	req.TimeoutMillis = contract.MaxHoldTimeout.Milliseconds()
	if resp, body := post(t, clientFrom(podIP), srv.URL, req); resp.StatusCode != http.StatusOK {
		t.Errorf("timeoutMillis at the limit: status %s (%s), want 200", resp.Status, body)
	}
}

// Headers are bounded too, far below net/http's 1 MiB default: the helper
// sends a few hundred bytes, and every connection's headers sit in memory.
func TestOversizedHeadersAreRefused(t *testing.T) {
	s := newServer(t, newHolder(), 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := startServer(t, ctx, s)

	b, _ := json.Marshal(request())
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+contract.HoldPath, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Padding", strings.Repeat("x", 64<<10))
	resp, err := clientFrom(podIP).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: status %s, want 431", resp.Status)
	}
}

// Malformed requests get a 4xx with a reason, and the server answers the
// next request normally.
func TestMalformedRequests(t *testing.T) {
	h := newHolder()
	srv := httptest.NewServer(newServer(t, h, 10))
	defer srv.Close()
	for name, raw := range map[string]string{
		"empty body":        "",
		"JSON array":        `[1,2]`,
		"wrong types":       `{"namespace":1,"name":true,"timeoutMillis":"soon"}`,
		"truncated":         `{"namespace":"shop","name":"web-1"`,
		"trailing garbage":  `{"namespace":"shop","name":"web-1","timeoutMillis":1000} trailing`,
		"negative timeout":  `{"namespace":"shop","name":"web-1","timeoutMillis":-5}`,
		"missing name":      `{"namespace":"shop","timeoutMillis":1000}`,
		"NUL bytes":         "\x00\x00\x00",
		"deeply nested":     strings.Repeat("[", 3000),
		"second JSON value": `{"namespace":"shop","name":"web-1","timeoutMillis":1000}{"namespace":"kube-system"}`,
	} {
		resp, body := post(t, clientFrom(podIP), srv.URL, []byte(raw))
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || !strings.Contains(body, "bad hold request") {
			t.Errorf("%s: status %s (%q), want a 4xx naming the bad request", name, resp.Status, body)
		}
	}
	if len(h.calls) != 0 {
		t.Errorf("%d malformed requests reached the holder", len(h.calls))
	}
	if resp, body := post(t, clientFrom(podIP), srv.URL, request()); resp.StatusCode != http.StatusOK {
		t.Errorf("well-formed request afterwards: status %s (%s)", resp.Status, body)
	}
}
