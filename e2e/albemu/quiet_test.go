package albemu_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/albdrain/albdrain/drain/helper/traffic"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/internal/contract"
)

// arrivalLog is a pod's own record of what reached it, by the sender's
// address: the ground truth the helper's sampler is judged against.
type arrivalLog struct {
	mu       sync.Mutex
	requests map[netip.Addr][]time.Time
	checks   map[netip.Addr][]time.Time
	changed  chan struct{} // closed and replaced on every arrival
}

func (l *arrivalLog) record(to map[netip.Addr][]time.Time, r *http.Request) {
	peer := netip.MustParseAddrPort(r.RemoteAddr).Addr()
	l.mu.Lock()
	defer l.mu.Unlock()
	to[peer] = append(to[peer], time.Now())
	close(l.changed)
	l.changed = make(chan struct{})
}

// wait waits until ok holds of the log, checked after every arrival.
func (l *arrivalLog) wait(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for {
		l.mu.Lock()
		done, changed := ok(), l.changed
		l.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// Issue 21, item 4: with draining targets health-checked every 250 ms from 4
// nodes, quiet periods came out about twice as long as the pod's rate
// called for. The ALB's nodes health-check from the same addresses they
// send requests from, on fresh connections to the served port, so a check
// taken for a request would add arrivals (a shorter period), and a check
// taken for activity would restart a node's silence (a longer hold). Here
// the helper's sampler reads the real sockets, through sock_diag, of a pod
// the emulator's nodes send Poisson requests to on kept-alive connections
// and check every 250 ms, while it is registered and after it is
// deregistered, its checks going on; what the sampler says of each node is
// held against the pod's own record of what each sent.
func TestHealthChecksAreNeitherArrivalsNorActivity(t *testing.T) {
	t.Parallel()
	const (
		nodes  = 4
		ip     = "127.0.1.30"
		rate   = 8.0 // requests per second to the pod, 2 per node
		sample = 200 * time.Millisecond
	)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	check := albemu.HealthCheck{Path: "/healthz", Interval: 250 * time.Millisecond, Timeout: 200 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2}
	d := newDataPlane(t, albemu.Options{Nodes: nodes, HealthCheckDraining: true},
		albemu.TargetGroupSpec{HealthCheck: check, DeregistrationDelay: time.Minute})

	log := &arrivalLog{requests: map[netip.Addr][]time.Time{}, checks: map[netip.Addr][]time.Time{}, changed: make(chan struct{})}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { log.record(log.checks, r) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.record(log.requests, r)
		_, _ = io.WriteString(w, "ok")
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	tgt, err := albemu.ParseTarget(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.emu.RegisterTargets(d.arn, tgt); err != nil {
		t.Fatal(err)
	}
	if err := d.emu.WaitTargetState(ctx, d.arn, tgt, albemu.StateHealthy); err != nil {
		t.Fatal(err)
	}

	// Clients send Poisson requests, each on a connection of its own, which
	// the listener spreads over the nodes in turn.
	stopClients := make(chan struct{})
	clientsDone := make(chan struct{})
	go func() {
		defer close(clientsDone)
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		r := rand.New(rand.NewPCG(21, 4))
		for {
			select {
			case <-stopClients:
				return
			case <-time.After(time.Duration(r.ExpFloat64() / rate * float64(time.Second))):
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.ln.URL(), nil)
			if err != nil {
				continue
			}
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(stopClients)
			<-clientsDone
		}
	}
	t.Cleanup(stop)
	everyNode := func(m map[netip.Addr][]time.Time, n int) bool {
		if len(m) < nodes {
			return false
		}
		for _, ts := range m {
			if len(ts) < n {
				return false
			}
		}
		return true
	}
	log.wait(t, ctx, "requests from every node", func() bool { return everyNode(log.requests, 2) })

	port := uint16(tgt.Port)
	hints := traffic.HintsFrom(&contract.Traffic{
		Ports:        []contract.TrafficPort{{Port: int32(port)}},
		HealthChecks: []contract.HealthCheck{{Port: int32(port), Protocol: "HTTP", Path: check.Path, IntervalMillis: check.Interval.Milliseconds()}},
	})
	tr := traffic.NewTracker(traffic.Filter{PodIP: netip.MustParseAddr(ip), Ports: []uint16{port}})
	var first time.Time
	// samples are when each sample began to read the sockets and when it
	// was taken (after the read).
	var samples [][2]time.Time
	observe := func() {
		began := time.Now()
		socks, err := traffic.SockDiag{}.Sockets()
		if err != nil {
			t.Fatalf("sock_diag: %v", err)
		}
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		samples = append(samples, [2]time.Time{began, now})
		tr.Observe(now, socks)
	}
	// seenBy is when the first sample that began reading after t was
	// taken: a request handled at t was in the kernel by then, so that
	// sample saw it, and the tracker dates its data no later.
	seenBy := func(t time.Time) time.Time {
		for _, s := range samples {
			if s[0].After(t) {
				return s[1]
			}
		}
		return time.Time{}
	}
	// The helper samples on a ticker; so does this test, until the log
	// shows what is wanted.
	sampleUntil := func(what string, ok func() bool) {
		tick := time.NewTicker(sample)
		defer tick.Stop()
		for {
			log.mu.Lock()
			done := ok()
			log.mu.Unlock()
			if done {
				return
			}
			select {
			case <-tick.C:
				observe()
			case <-ctx.Done():
				t.Fatalf("waiting for %s: %v", what, ctx.Err())
			}
		}
	}
	observe()
	since := func(m map[netip.Addr][]time.Time, at time.Time) map[netip.Addr]int {
		out := map[netip.Addr]int{}
		for a, ts := range m {
			for _, ts := range ts {
				if ts.After(at) {
					out[a]++
				}
			}
		}
		return out
	}
	// While the pod is registered: a dozen requests and as many checks
	// from every node.
	sampleUntil("a dozen requests and checks from every node", func() bool {
		reqs, checks := since(log.requests, first), since(log.checks, first)
		for _, m := range []map[netip.Addr]int{reqs, checks} {
			if len(m) < nodes {
				return false
			}
			for _, n := range m {
				if n < 12 {
					return false
				}
			}
		}
		return true
	})
	// Deregistered (every node at once): the requests stop, the checks go on.
	if err := d.emu.DeregisterTargets(d.arn, tgt); err != nil {
		t.Fatal(err)
	}
	stop()
	log.mu.Lock()
	lastRequest := map[netip.Addr]time.Time{}
	for a, ts := range log.requests {
		lastRequest[a] = ts[len(ts)-1]
	}
	log.mu.Unlock()
	sampleUntil("eight checks from every node after its last request", func() bool {
		for a, last := range lastRequest {
			if since(log.checks, last)[a] < 8 {
				return false
			}
		}
		return true
	})
	observe()
	now := time.Now()

	log.mu.Lock()
	defer log.mu.Unlock()
	requests := since(log.requests, first)
	got := map[netip.Addr]traffic.SourceState{}
	for _, s := range tr.Sources(hints, traffic.Period{Gaps: 15, Min: time.Second, Max: time.Minute}, now) {
		got[s.Addr] = s
	}
	if len(got) != len(lastRequest) {
		t.Errorf("the sampler knows %d load-balancer addresses, the pod was sent requests from %d", len(got), len(lastRequest))
	}
	for a, last := range lastRequest {
		s, ok := got[a]
		if !ok {
			t.Errorf("%v: sent %d requests, unknown to the sampler", a, requests[a])
			continue
		}
		// One gap is the age of the node's latest request before the first
		// sample; a request in flight across the first sample may fall on
		// either side of it.
		if arrivals := s.Gaps - 1; arrivals < requests[a]-1 || arrivals > requests[a]+1 {
			t.Errorf("%v: %d arrivals since the first sample, the pod served %d requests from it (and %d checks)",
				a, arrivals, requests[a], since(log.checks, first)[a])
		}
		// The tracker dates data no later than the sample that saw it; the
		// checks went on for seconds after.
		if by := seenBy(last); s.Last.After(by) {
			t.Errorf("%v: its traffic last reached the pod %v after its last request, past the sample that saw it: a health check restarted its silence",
				a, s.Last.Sub(last))
		}
	}
	last := maxTime(lastRequest)
	if got := tr.LastTraffic(hints, now); got.After(seenBy(last)) {
		t.Errorf("the pod's traffic last arrived %v after its last request, past the sample that saw it", got.Sub(last))
	}
}

func maxTime(m map[netip.Addr]time.Time) time.Time {
	var out time.Time
	for _, t := range m {
		if t.After(out) {
			out = t
		}
	}
	return out
}
