package helper

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// quietOpts keeps tests fast: short backoff and sampling, no log noise.
func quietOpts(t *testing.T) Options {
	return Options{
		Log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		SampleInterval: 5 * time.Millisecond,
		RetryBackoff:   time.Millisecond,
		MaxBackoff:     time.Millisecond,
		MaxFailures:    3,
	}
}

func waitSpec(maxHold, fallback time.Duration) contract.Spec {
	return contract.Spec{Mode: contract.ModeWait, MaxHold: maxHold, Fallback: fallback, QuietPeriod: 10 * time.Millisecond, Ports: []int32{8080}}
}

// fakeWatcher answers hold requests through answer, recording them.
type fakeWatcher struct {
	mu       sync.Mutex
	requests []contract.HoldRequest
	remotes  []string
	ends     []contract.HoldEnd
	answer   func(n int, w http.ResponseWriter, r *http.Request)
	// dropEnds is how many end reports to drop, as a replica dying would.
	dropEnds int
}

func (f *fakeWatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	drop := r.URL.Path == contract.HoldEndPath && f.dropEnds > 0
	if drop {
		f.dropEnds--
	}
	f.mu.Unlock()
	if drop {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	if r.URL.Path == contract.HoldEndPath {
		var end contract.HoldEnd
		if json.NewDecoder(r.Body).Decode(&end) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.ends = append(f.ends, end)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var req contract.HoldRequest
	if r.URL.Path != contract.HoldPath || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.remotes = append(f.remotes, r.RemoteAddr)
	n := len(f.requests)
	f.mu.Unlock()
	f.answer(n, w, r)
}

func answerOutcome(w http.ResponseWriter, o contract.Outcome) {
	_ = jsonAnswer(w, contract.HoldResponse{Outcome: o, Message: "test"})
}

func jsonAnswer(w http.ResponseWriter, resp contract.HoldResponse) error {
	return json.NewEncoder(w).Encode(resp)
}

func startWatcher(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) (*fakeWatcher, string) {
	f := &fakeWatcher{answer: answer}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func podEnv(url string) Env {
	return Env{PodName: "web-1", PodNamespace: "shop", PodUID: "uid-1", PodIP: netip.MustParseAddr("127.0.5.1"), WatcherURL: url}
}

func TestWatcherReleases(t *testing.T) {
	f, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerOutcome(w, contract.OutcomeDeregistered)
	})
	res, err := Run(context.Background(), waitSpec(time.Minute, time.Minute), podEnv(url+"/"), quietOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != contract.OutcomeDeregistered || !res.Quiet {
		t.Errorf("Run = %+v, want deregistered and quiet", res)
	}
	req := f.requests[0]
	if req.Namespace != "shop" || req.Name != "web-1" || req.UID != "uid-1" || req.TimeoutMillis <= 0 || req.TimeoutMillis > 60_000 {
		t.Errorf("request %+v, want the pod's identity and at most the 60s max-hold", req)
	}
	if host, _, _ := net.SplitHostPort(f.remotes[0]); host != "127.0.5.1" {
		t.Errorf("helper dialled from %s, want the pod IP 127.0.5.1", host)
	}
}

func TestDroppedHoldIsRetriedWithTheSameDeadline(t *testing.T) {
	f, url := startWatcher(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1: // a replica dies mid-hold
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		case 2: // the next one is shutting down
			http.Error(w, "stopping", http.StatusServiceUnavailable)
		default:
			answerOutcome(w, contract.OutcomeDeregistered)
		}
	})
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Minute), podEnv(url), quietOpts(t))
	if res.Outcome != contract.OutcomeDeregistered {
		t.Fatalf("outcome %q, want deregistered after retries", res.Outcome)
	}
	if len(f.requests) != 3 {
		t.Fatalf("%d requests, want 3", len(f.requests))
	}
	for i := 1; i < 3; i++ {
		if f.requests[i].TimeoutMillis > f.requests[i-1].TimeoutMillis {
			t.Errorf("retry %d asked for %dms, more than the %dms left before it", i, f.requests[i].TimeoutMillis, f.requests[i-1].TimeoutMillis)
		}
	}
}

func TestWatcherUnreachableFallsBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now

	const fallback = 50 * time.Millisecond
	start := time.Now()
	res, err := Run(context.Background(), waitSpec(time.Minute, fallback), podEnv(url), quietOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != contract.OutcomeFallback {
		t.Errorf("outcome %q, want fallback", res.Outcome)
	}
	if took := time.Since(start); took < fallback {
		t.Errorf("returned after %v, before the %v fallback sleep", took, fallback)
	}
}

func TestFallbackNeverPassesMaxHold(t *testing.T) {
	_, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerOutcome(w, contract.OutcomeFallback)
	})
	// A fallback of an hour must end with the 500ms max-hold.
	res, _ := Run(context.Background(), waitSpec(500*time.Millisecond, time.Hour), podEnv(url), quietOpts(t))
	if res.Outcome != contract.OutcomeFallback {
		t.Errorf("outcome %q, want fallback", res.Outcome)
	}
}

func TestRefusedHoldFallsBackWithoutRetrying(t *testing.T) {
	f, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not your pod", http.StatusForbidden)
	})
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Millisecond), podEnv(url), quietOpts(t))
	if res.Outcome != contract.OutcomeFallback || len(f.requests) != 1 {
		t.Errorf("outcome %q after %d requests, want fallback after 1", res.Outcome, len(f.requests))
	}
}

func TestNoWatcherURLFallsBack(t *testing.T) {
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Millisecond), podEnv(""), quietOpts(t))
	if res.Outcome != contract.OutcomeFallback {
		t.Errorf("outcome %q, want fallback", res.Outcome)
	}
}

func TestMaxHoldEndsAWaitingHold(t *testing.T) {
	_, url := startWatcher(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	res, _ := Run(context.Background(), waitSpec(50*time.Millisecond, time.Hour), podEnv(url), quietOpts(t))
	if res.Outcome != contract.OutcomeTimeout {
		t.Errorf("outcome %q, want timeout", res.Outcome)
	}
}

func TestBadWatcherCAFallsBack(t *testing.T) {
	env := podEnv("https://127.0.0.1:1")
	env.WatcherCA = "not PEM"
	res, _ := Run(context.Background(), waitSpec(time.Minute, time.Millisecond), env, quietOpts(t))
	if res.Outcome != contract.OutcomeFallback {
		t.Errorf("outcome %q, want fallback", res.Outcome)
	}
}

func TestEnvFromOS(t *testing.T) {
	t.Setenv(contract.EnvPodName, "web-1")
	t.Setenv(contract.EnvPodNamespace, "shop")
	t.Setenv(contract.EnvPodUID, "uid-1")
	t.Setenv(contract.EnvPodIP, "::ffff:10.0.0.7")
	t.Setenv(contract.EnvWatcherURL, "https://albdrain:9443")
	t.Setenv(contract.EnvWatcherCA, "PEM")
	t.Setenv(contract.EnvHostIP, "10.0.9.9")
	t.Setenv(contract.EnvTrustDir, "/var/run/secrets/albdrain.io")
	want := Env{PodName: "web-1", PodNamespace: "shop", PodUID: "uid-1", PodIP: netip.MustParseAddr("10.0.0.7"), HostIP: netip.MustParseAddr("10.0.9.9"), WatcherURL: "https://albdrain:9443", WatcherCA: "PEM", TrustDir: "/var/run/secrets/albdrain.io"}
	if got := EnvFromOS(); got != want {
		t.Errorf("EnvFromOS = %+v, want %+v", got, want)
	}
}
