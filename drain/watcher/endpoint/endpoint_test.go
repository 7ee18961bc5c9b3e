package endpoint

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/internal/contract"
)

const podIP = "127.0.4.1"

// fakeHolder answers with resp, or blocks until release is closed or ctx ends.
type fakeHolder struct {
	answer    contract.Answer
	release   chan struct{}
	calls     chan time.Time // requested deadlines
	abandoned chan struct{}  // a hold's context ended
	ends      chan contract.HoldEnd
}

func (f *fakeHolder) End(_ context.Context, _ *corev1.Pod, end contract.HoldEnd) {
	f.ends <- end
}

func (f *fakeHolder) Hold(ctx context.Context, _ *corev1.Pod, requested time.Time, _ time.Duration) (contract.Answer, bool) {
	f.calls <- requested
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			f.abandoned <- struct{}{}
			return contract.Answer{}, false
		}
	}
	return f.answer, true
}

func newHolder() *fakeHolder {
	return &fakeHolder{
		answer:    contract.NewFinal(contract.OutcomeDeregistered, "", contract.Wait{}),
		calls:     make(chan time.Time, 10),
		abandoned: make(chan struct{}, 10),
		ends:      make(chan contract.HoldEnd, 10),
	}
}

// pod is terminating, as a pod whose preStop runs is; the finalizer lets
// the fake client keep it.
func pod() *corev1.Pod {
	deleted := metav1.Now()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "uid-1", DeletionTimestamp: &deleted, Finalizers: []string{"test/keep"}},
		Status:     corev1.PodStatus{PodIP: podIP, PodIPs: []corev1.PodIP{{IP: podIP}}},
	}
}

func newServer(t *testing.T, h Holder, maxConcurrent int, more ...client.Object) *Server {
	t.Helper()
	return New(Options{Pods: fakePods(t, append(more, pod())...), Holder: h, MaxConcurrent: maxConcurrent, Metrics: metrics.New()})
}

// refusals reads a server's count of refused requests by reason, leaving
// out reasons never counted.
func refusals(s *Server) map[string]float64 {
	out := map[string]float64{}
	for _, r := range contract.RefusalReasons {
		if n := testutil.ToFloat64(s.opts.Metrics.HoldRefusals.WithLabelValues(r)); n != 0 {
			out[r] = n
		}
	}
	return out
}

// wantRefusals checks the server counted exactly want (reason: count).
func wantRefusals(t *testing.T, s *Server, want map[string]float64) {
	t.Helper()
	if d := cmp.Diff(want, refusals(s), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("refusals counted (-want +got):\n%s", d)
	}
}

// clientFrom dials from ip, as the helper dials from its pod's IP.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func post(t *testing.T, c *http.Client, url string, body any) (*http.Response, string) {
	t.Helper()
	return postTo(t, c, url+contract.HoldPath, body)
}

func postTo(t *testing.T, c *http.Client, url string, body any) (*http.Response, string) {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp, string(text)
}

// statusOf posts a hold and returns the status, or -1 if the request
// failed; for goroutines, which must not call t.Fatal.
func statusOf(c *http.Client, url string, req contract.HoldRequest) int {
	b, _ := json.Marshal(req)
	resp, err := c.Post(url+contract.HoldPath, "application/json", bytes.NewReader(b))
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

func request() contract.HoldRequest {
	return contract.HoldRequest{Namespace: "shop", Name: "web-1", UID: "uid-1", TimeoutMillis: 60_000}
}

func TestOwnPodIsHeld(t *testing.T) {
	h := newHolder()
	srv := httptest.NewServer(newServer(t, h, 10))
	defer srv.Close()

	before := time.Now()
	resp, body := post(t, clientFrom(podIP), srv.URL, request())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s: %s", resp.Status, body)
	}
	var got contract.HoldResponse
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Outcome != contract.OutcomeDeregistered {
		t.Errorf("response %q (%v), want outcome deregistered", body, err)
	}
	requested := <-h.calls
	if requested.Before(before.Add(60*time.Second)) || requested.After(time.Now().Add(60*time.Second)) {
		t.Errorf("requested deadline %v is not 60s after the request", requested)
	}
}

func TestRefusals(t *testing.T) {
	h := newHolder()
	s := newServer(t, h, 10)
	srv := httptest.NewServer(s)
	defer srv.Close()
	other := request()
	other.Name = "web-2"
	wrongUID := request()
	wrongUID.UID = "uid-0"
	noTimeout := request()
	noTimeout.TimeoutMillis = 0
	tests := []struct {
		name   string
		from   string
		body   any
		want   int
		reason string
	}{
		{"another pod's IP", "127.0.4.2", request(), http.StatusForbidden, contract.RefusedWrongSource},
		{"unknown pod", podIP, other, http.StatusForbidden, contract.RefusedWrongSource},
		{"successor with the same name", podIP, wrongUID, http.StatusConflict, contract.RefusedWrongUID},
		{"no timeout", podIP, noTimeout, http.StatusBadRequest, contract.RefusedBadRequest},
		{"not JSON", podIP, []byte("hold me"), http.StatusBadRequest, contract.RefusedBadRequest},
		{"too large", podIP, []byte(`{"namespace":"` + strings.Repeat("x", contract.MaxHoldRequestBytes) + `"}`), http.StatusRequestEntityTooLarge, contract.RefusedBadRequest},
	}
	counted := map[string]float64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, clientFrom(tt.from), srv.URL, tt.body)
			if resp.StatusCode != tt.want {
				t.Errorf("status %s (%s), want %d", resp.Status, body, tt.want)
			}
		})
		counted[tt.reason]++
	}
	if len(h.calls) != 0 {
		t.Errorf("%d refused requests reached the holder", len(h.calls))
	}

	resp, err := clientFrom(podIP).Get(srv.URL + contract.HoldPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET status %s, want 405", resp.Status)
	}
	resp, err = clientFrom(podIP).Post(srv.URL+"/other", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path status %s, want 404", resp.Status)
	}
	// A wrong method or path is no hold request and is not counted.
	wantRefusals(t, s, counted)
}

// A pod the watcher cannot read is a 503 the helper retries, counted apart
// from callers refused for who they are.
func TestUnreadablePod(t *testing.T) {
	h := newHolder()
	pods := fake.NewClientBuilder().WithObjects(pod()).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return errors.New("cache unavailable")
		},
	}).Build()
	s := New(Options{Pods: pods, Holder: h, MaxConcurrent: 10, Metrics: metrics.New()})
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, body := post(t, clientFrom(podIP), srv.URL, request())
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %s (%s), want 503", resp.Status, body)
	}
	wantRefusals(t, s, map[string]float64{contract.RefusedPodUnreadable: 1})
}

func TestHoldEnds(t *testing.T) {
	h := newHolder()
	s := newServer(t, h, 1)
	srv := httptest.NewServer(s)
	defer srv.Close()
	end := contract.HoldEnd{Namespace: "shop", Name: "web-1", UID: "uid-1", Outcome: contract.OutcomeQuiet, HeldMillis: 4000, QuietMillis: 1000, Signal: contract.SignalSockDiag}
	with := func(f func(*contract.HoldEnd)) contract.HoldEnd {
		e := end
		f(&e)
		return e
	}
	tests := []struct {
		name string
		from string
		body any
		want int
	}{
		{"quiet", podIP, end, http.StatusNoContent},
		{"bound", podIP, with(func(e *contract.HoldEnd) { e.Outcome = contract.OutcomeBound; e.Signal = contract.SignalProcNet }), http.StatusNoContent},
		{"another pod's IP", "127.0.4.2", end, http.StatusForbidden},
		{"successor with the same name", podIP, with(func(e *contract.HoldEnd) { e.UID = "uid-0" }), http.StatusConflict},
		{"not an end outcome", podIP, with(func(e *contract.HoldEnd) { e.Outcome = contract.OutcomeDeregistered }), http.StatusBadRequest},
		{"unknown signal", podIP, with(func(e *contract.HoldEnd) { e.Signal = "ebpf" }), http.StatusBadRequest},
		{"negative hold", podIP, with(func(e *contract.HoldEnd) { e.HeldMillis = -1 }), http.StatusBadRequest},
		{"endless quiet", podIP, with(func(e *contract.HoldEnd) { e.QuietMillis = contract.MaxHoldTimeout.Milliseconds() + 1 }), http.StatusBadRequest},
		{"no name", podIP, with(func(e *contract.HoldEnd) { e.Name = "" }), http.StatusBadRequest},
	}
	var want []contract.HoldEnd
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := postTo(t, clientFrom(tt.from), srv.URL+contract.HoldEndPath, tt.body)
			if resp.StatusCode != tt.want {
				t.Errorf("status %s (%s), want %d", resp.Status, body, tt.want)
			}
		})
		if tt.want == http.StatusNoContent {
			want = append(want, tt.body.(contract.HoldEnd))
		}
	}
	wantRefusals(t, s, map[string]float64{contract.RefusedWrongSource: 1, contract.RefusedWrongUID: 1, contract.RefusedBadRequest: 5})
	close(h.ends)
	var got []contract.HoldEnd
	for e := range h.ends {
		got = append(got, e)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ends recorded (-want +got):\n%s", d)
	}
}

func TestConcurrentHoldsAreBounded(t *testing.T) {
	h := newHolder()
	h.release = make(chan struct{})
	second := pod()
	second.Name, second.UID = "web-2", "uid-2"
	second.Status.PodIP, second.Status.PodIPs = "127.0.4.2", []corev1.PodIP{{IP: "127.0.4.2"}}
	s := newServer(t, h, 1, second)
	srv := httptest.NewServer(s)
	defer srv.Close()

	first := make(chan int)
	go func() { first <- statusOf(clientFrom(podIP), srv.URL, request()) }()
	<-h.calls // the first hold is in progress
	req := request()
	req.Name, req.UID = "web-2", "uid-2"
	resp, body := post(t, clientFrom("127.0.4.2"), srv.URL, req)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second pod's hold: status %s (%s), want 503", resp.Status, body)
	}
	close(h.release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("first hold: status %d, want 200", code)
	}
	wantRefusals(t, s, map[string]float64{contract.RefusedCapacity: 1})
}

func TestHelperGoingAwayEndsItsHold(t *testing.T) {
	h := newHolder()
	h.release = make(chan struct{}) // never released
	srv := httptest.NewServer(newServer(t, h, 10))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	b, _ := json.Marshal(request())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+contract.HoldPath, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if resp, err := clientFrom(podIP).Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-h.calls
	cancel() // the helper is killed mid-hold
	select {
	case <-h.abandoned:
	case <-time.After(10 * time.Second):
		t.Fatal("the hold went on after its helper went away")
	}
}

func TestStoppingAsksHelpersToRetry(t *testing.T) {
	h := newHolder()
	h.release = make(chan struct{}) // never released
	s := newServer(t, h, 10)
	ctx, cancel := context.WithCancel(context.Background())
	addr := startServer(t, ctx, s)

	if s.NeedLeaderElection() {
		t.Error("hold server needs leader election; every replica must serve")
	}
	got := make(chan int)
	go func() { got <- statusOf(clientFrom(podIP), "http://"+addr, request()) }()
	<-h.calls
	cancel()
	if code := <-got; code != http.StatusServiceUnavailable {
		t.Errorf("status of a hold cut by shutdown = %d, want 503 so the helper retries", code)
	}
}

// startServer runs s until ctx ends and returns its address once it listens.
func startServer(t *testing.T, ctx context.Context, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s.opts.Addr = addr
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for s.ReadyCheck(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatal("server never became ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return addr
}

// startTLS serves s over TLS, with a new certificate in a directory of its
// own, until the test ends. It returns the address, the directory (to
// rotate the certificate in) and the certificate.
func startTLS(t *testing.T, s *Server) (addr, dir string, caPEM []byte) {
	t.Helper()
	dir = t.TempDir()
	caPEM = writeCert(t, dir)
	s.opts.CertDir = dir
	return startServer(t, t.Context(), s), dir, caPEM
}

// roots is a pool of the one certificate caPEM.
func roots(caPEM []byte) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return pool
}

// clientTrusting is clientFrom(podIP) over TLS, trusting caPEM alone.
func clientTrusting(caPEM []byte) *http.Client {
	c := clientFrom(podIP)
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots(caPEM)}
	return c
}

func TestTLS(t *testing.T) {
	addr, _, caPEM := startTLS(t, newServer(t, newHolder(), 10))
	c := clientTrusting(caPEM)
	resp, body := post(t, c, "https://"+addr, request())
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %s (%s), want 200 over TLS", resp.Status, body)
	}

	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots(caPEM), MaxVersion: tls.VersionTLS11}
	if resp, err := c.Post("https://"+addr+contract.HoldPath, "application/json", nil); err == nil {
		resp.Body.Close()
		t.Error("TLS 1.1 handshake succeeded, want TLS 1.2 at least")
	}
}

// writeCert writes a self-signed tls.crt and tls.key for 127.0.0.1 into dir.
func writeCert(t *testing.T, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "albdrain-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM
}
