package traffic

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func sock(local, remote string, state uint8, info *Info) Socket {
	return Socket{Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), State: state, Info: info}
}

func data(agoMs int, bytes uint64) *Info {
	return &Info{LastDataRecv: time.Duration(agoMs) * time.Millisecond, BytesReceived: bytes, Counters: true}
}

func TestFilter(t *testing.T) {
	f := Filter{PodIP: netip.MustParseAddr("10.0.0.5"), NodeIP: netip.MustParseAddr("10.0.9.9"), Ports: []uint16{8080}}
	got := map[string]bool{}
	for name, s := range map[string]Socket{
		"load balancer":      sock("10.0.0.5:8080", "10.0.1.1:40000", stateEstablished, nil),
		"listener":           sock("10.0.0.5:8080", "0.0.0.0:0", stateListen, nil),
		"other port":         sock("10.0.0.5:9090", "10.0.1.1:40000", stateEstablished, nil),
		"outbound":           sock("10.0.0.5:40000", "10.0.1.1:8080", stateEstablished, nil),
		"kubelet probe":      sock("10.0.0.5:8080", "10.0.9.9:40000", stateEstablished, nil),
		"sidecar":            sock("127.0.0.1:8080", "127.0.0.1:40000", stateEstablished, nil),
		"pod to its own IP":  sock("10.0.0.5:8080", "10.0.0.5:40000", stateEstablished, nil),
		"another local addr": sock("10.0.0.6:8080", "10.0.1.1:40000", stateEstablished, nil),
	} {
		got[name] = f.accepts(s)
	}
	want := map[string]bool{"load balancer": true, "listener": false, "other port": false, "outbound": false,
		"kubelet probe": false, "sidecar": false, "pod to its own IP": false, "another local addr": false}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("accepts (-want +got):\n%s", d)
	}
}

func TestPeriodOf(t *testing.T) {
	p := Period{Gaps: 5, Min: time.Second, Max: 20 * time.Second}
	type in struct {
		N    int
		Span time.Duration
	}
	want := map[in]time.Duration{
		{0, 0}:                       20 * time.Second,        // nothing known: the longest
		{1, 5 * time.Second}:         20 * time.Second,        // 5 gaps of 5 s, beyond the longest
		{5, 2500 * time.Millisecond}: 4296 * time.Millisecond, // 2.5 s × (e - 1): few gaps, widened
		{50, 25 * time.Second}:       2629 * time.Millisecond, // near 5 mean gaps of 0.5 s
		{1, 47 * time.Millisecond}:   6928 * time.Millisecond, // one short gap is no proof of a high rate
		{1000, time.Second}:          time.Second,             // the shortest
	}
	got := map[in]time.Duration{}
	for x := range want {
		got[x] = p.of(x.N, x.Span).Round(time.Millisecond)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("of (-want +got):\n%s", d)
	}
	if fixed := (Period{Min: 3 * time.Second, Max: time.Minute}).of(1, time.Hour); fixed != 3*time.Second {
		t.Errorf("without gaps the period is %v, want the minimum", fixed)
	}
	// Whatever the gaps seen, an address still sending breaks its period
	// with the chance (1+q/S)^-n = e^-k: with few gaps as with many.
	wide := Period{Gaps: 15, Min: time.Nanosecond, Max: 1000 * time.Hour}
	for _, n := range []int{1, 2, 3, 5, 15, 50} {
		span := time.Duration(n) * time.Second
		q := wide.of(n, span)
		if chance := math.Pow(1+float64(q)/float64(span), -float64(n)); math.Abs(chance/math.Exp(-15)-1) > 1e-6 {
			t.Errorf("%d gaps: period %v breaks with chance %g, want e^-15 = %g", n, q, chance, math.Exp(-15))
		}
	}
}

// evidence is what a tracker knows of one source's rate.
type evidence struct {
	Gaps int
	Span time.Duration
}

// flowsKey names the source of every NLB flow in evidenceOf.
const flowsKey = "flows"

// evidenceOf is each source's evidence, by address.
func evidenceOf(tr *Tracker, h Hints, now time.Time) map[string]evidence {
	out := map[string]evidence{}
	for a, s := range tr.sources(h, now) {
		k := a.String()
		if !a.IsValid() {
			k = flowsKey
		}
		n, span := s.evidence(tr.start)
		out[k] = evidence{n, span}
	}
	return out
}

// verdict is what a tracker says at a time.
type verdict struct {
	Last    time.Time
	Sources map[string]evidence
	Pending int
}

// ev is n gaps over ms milliseconds, plus the kernel's tolerance.
func ev(n, ms int) evidence {
	return evidence{n, time.Duration(ms)*time.Millisecond + dataTolerance}
}

func TestTrackerVerdicts(t *testing.T) {
	const pod, lb, lb2 = "10.0.0.5:8080", "10.0.1.1:", "10.0.1.2:"
	hc := Hints{HealthChecks: []HealthCheck{{Port: 8080, MaxBytes: 200, Interval: time.Second}}}
	nlb := Hints{Flows: []uint16{8080}}
	tests := []struct {
		name    string
		samples map[int][]Socket // by ms after t0
		hints   Hints
		now     int
		want    verdict
	}{{
		name: "requests on a kept-alive connection",
		samples: map[int][]Socket{
			0:   {sock(pod, lb+"1", stateEstablished, data(300, 1000))},
			100: {sock(pod, lb+"1", stateEstablished, data(10, 1200))},
			200: {sock(pod, lb+"1", stateEstablished, data(30, 1400))},
			300: {sock(pod, lb+"1", stateEstablished, data(130, 1400))},
		},
		now: 400,
		// One request 300ms before the watch, two in it by 170ms.
		want: verdict{Last: at(170), Sources: map[string]evidence{"10.0.1.1": ev(3, 470)}},
	}, {
		name: "every data segment is a request",
		samples: map[int][]Socket{
			0:   {sock(pod, lb+"1", stateEstablished, &Info{LastDataRecv: time.Second, BytesReceived: 1000, Counters: true, DataSegsIn: 10})},
			100: {sock(pod, lb+"1", stateEstablished, &Info{LastDataRecv: 0, BytesReceived: 2000, Counters: true, DataSegsIn: 19})},
		},
		now:  100,
		want: verdict{Last: at(100), Sources: map[string]evidence{"10.0.1.1": ev(10, 1100)}},
	}, {
		name: "a peer's FIN is not data",
		samples: map[int][]Socket{
			0:   {sock(pod, lb+"1", stateEstablished, &Info{LastDataRecv: time.Second, BytesReceived: 1000, Counters: true, DataSegsIn: 5}), sock(pod, lb+"2", stateEstablished, data(1000, 500))},
			100: {sock(pod, lb+"1", 8, &Info{LastDataRecv: time.Second, BytesReceived: 1001, Counters: true, DataSegsIn: 5}), sock(pod, lb+"2", 8, data(1100, 501))},
		},
		now:  200,
		want: verdict{Last: at(0), Sources: map[string]evidence{"10.0.1.1": ev(1, 1000)}},
	}, {
		name: "each ALB node is a source, whichever pooled connection carried its data",
		samples: map[int][]Socket{
			0: {sock(pod, lb+"1", stateEstablished, data(300, 1000)), sock(pod, lb+"2", stateEstablished, data(5000, 100)),
				sock(pod, lb2+"1", stateEstablished, data(900, 500))},
			100: {sock(pod, lb+"1", stateEstablished, data(10, 1200)), sock(pod, lb+"2", stateEstablished, data(5100, 100)),
				sock(pod, lb2+"1", stateEstablished, data(1000, 500))},
			200: {sock(pod, lb+"1", stateEstablished, data(110, 1200)), sock(pod, lb+"2", stateEstablished, data(5200, 100)),
				sock(pod, lb2+"1", stateEstablished, data(50, 700))},
		},
		now: 400,
		// The first node's idle connection says nothing.
		want: verdict{Last: at(150), Sources: map[string]evidence{"10.0.1.1": ev(2, 390), "10.0.1.2": ev(2, 1050)}},
	}, {
		name: "an idle connection: the silence before the hold is one gap",
		samples: map[int][]Socket{
			0:   {sock(pod, lb+"1", stateEstablished, data(5000, 1000))},
			100: {sock(pod, lb+"1", stateEstablished, data(5100, 1000))},
		},
		now:  1000,
		want: verdict{Last: at(0), Sources: map[string]evidence{"10.0.1.1": ev(1, 5000)}},
	}, {
		name: "the silence after the latest arrival is not evidence",
		samples: map[int][]Socket{
			0:    {sock(pod, lb+"1", stateEstablished, data(100, 1000))},
			100:  {sock(pod, lb+"1", stateEstablished, data(0, 1100))},
			200:  {sock(pod, lb+"1", stateEstablished, data(0, 1200))},
			300:  {sock(pod, lb+"1", stateEstablished, data(0, 1300))},
			5000: {sock(pod, lb+"1", stateEstablished, data(4700, 1300))},
		},
		now:  5000,
		want: verdict{Last: at(300), Sources: map[string]evidence{"10.0.1.1": ev(4, 400)}},
	}, {
		name: "without counters, a moving last-data time is data",
		samples: map[int][]Socket{
			0:   {sock(pod, lb+"1", stateEstablished, &Info{LastDataRecv: 300 * time.Millisecond})},
			100: {sock(pod, lb+"1", stateEstablished, &Info{LastDataRecv: 50 * time.Millisecond})},
			200: {sock(pod, lb+"1", stateEstablished, &Info{LastDataRecv: 150 * time.Millisecond})},
		},
		now:  200,
		want: verdict{Last: at(50), Sources: map[string]evidence{"10.0.1.1": ev(2, 350)}},
	}, {
		name: "health checks come and go",
		samples: map[int][]Socket{
			0:   nil,
			100: {sock(pod, lb+"2", stateEstablished, data(1, 120))},
			200: {sock(pod, lb+"2", 6, nil), sock(pod, lb+"3", 6, nil)},
			300: {},
		},
		hints: hc,
		now:   300,
		want:  verdict{Last: at(0), Sources: map[string]evidence{}},
	}, {
		name: "a health check open at the first sample is no source",
		samples: map[int][]Socket{
			0:   {sock(pod, lb2+"7", stateEstablished, data(1, 120)), sock(pod, lb+"1", stateEstablished, data(300, 1000))},
			100: {sock(pod, lb+"1", stateEstablished, data(300, 1000))},
		},
		hints: hc,
		now:   100,
		want:  verdict{Last: at(0), Sources: map[string]evidence{"10.0.1.1": ev(1, 300)}},
	}, {
		name: "a new connection carrying more than a health check is traffic",
		samples: map[int][]Socket{
			0:   nil,
			100: {sock(pod, lb+"2", stateEstablished, data(1, 5000))},
			200: {},
		},
		hints: hc,
		now:   200,
		want:  verdict{Last: at(99), Sources: map[string]evidence{"10.0.1.1": ev(1, 99)}},
	}, {
		name: "a health check still open is pending: activity, not evidence",
		samples: map[int][]Socket{
			0:   nil,
			100: {sock(pod, lb+"2", stateEstablished, data(1, 100))},
		},
		hints: hc,
		now:   100,
		want:  verdict{Last: at(99), Sources: map[string]evidence{"10.0.1.1": ev(0, 0)}, Pending: 1},
	}, {
		name: "a connection open past the check interval is traffic",
		samples: map[int][]Socket{
			0:    nil,
			100:  {sock(pod, lb+"2", stateEstablished, data(1, 100))},
			1200: {sock(pod, lb+"2", stateEstablished, data(1101, 100))},
		},
		hints: hc,
		now:   1200,
		want:  verdict{Last: at(99), Sources: map[string]evidence{"10.0.1.1": ev(1, 99)}},
	}, {
		name: "NLB: data on established flows is not traffic, a new flow is; all flows are one source",
		samples: map[int][]Socket{
			0:   {sock(pod, lb+"1", stateEstablished, data(5, 1000))},
			100: {sock(pod, lb+"1", stateEstablished, data(5, 2000))},
			200: {sock(pod, lb+"1", stateEstablished, data(5, 3000)), sock(pod, lb2+"4", stateEstablished, data(50, 0))},
		},
		hints: nlb,
		now:   400,
		want:  verdict{Last: at(150), Sources: map[string]evidence{flowsKey: ev(1, 150)}},
	}, {
		name: "procnet: a new connection is traffic when first seen",
		samples: map[int][]Socket{
			0:   {sock(pod, lb+"1", stateEstablished, nil)},
			100: {sock(pod, lb+"1", stateEstablished, nil), sock(pod, lb+"5", stateEstablished, nil)},
		},
		now:  300,
		want: verdict{Last: at(100), Sources: map[string]evidence{"10.0.1.1": ev(1, 100)}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(Filter{PodIP: netip.MustParseAddr("10.0.0.5"), Ports: []uint16{8080}})
			for ms := 0; ms <= tt.now; ms++ {
				if socks, ok := tt.samples[ms]; ok {
					tr.Observe(at(ms), socks)
				}
			}
			now := at(tt.now)
			got := verdict{Last: tr.LastTraffic(tt.hints, now), Sources: evidenceOf(tr, tt.hints, now)}
			for k, c := range tr.conns {
				if tt.hints.classify(k, c, now) == kindPending {
					got.Pending++
				}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestTrackerFoldsClosedConnectionsPastItsBound(t *testing.T) {
	tr := NewTracker(Filter{PodIP: netip.MustParseAddr("10.0.0.5"), Ports: []uint16{8080}})
	tr.Observe(at(0), nil)
	var socks []Socket
	for i := range maxConns + 1 {
		socks = append(socks, sock("10.0.0.5:8080", netip.AddrPortFrom(netip.MustParseAddr("10.0.1.1"), uint16(i+1)).String(), stateEstablished, nil))
	}
	tr.Observe(at(100), socks)
	tr.Observe(at(200), nil) // all closed
	tr.Observe(at(300), socks[:1])
	if len(tr.conns) != 1 {
		t.Errorf("%d connections tracked after folding, want 1", len(tr.conns))
	}
	n := 0
	for _, s := range tr.sources(Hints{}, at(300)) {
		n += s.n
	}
	if n != maxConns+2 {
		t.Errorf("%d arrivals after folding, want %d", n, maxConns+2)
	}
	if last := tr.LastTraffic(Hints{}, at(300)); !last.Equal(at(300)) {
		t.Errorf("last traffic %v, want the reopened connection's", last)
	}
}

// TestSilenceCountsFromTheFirstSample checks that an address whose latest
// request came long before the hold began is not judged quiet by that old
// silence: its node was still routing when the hold began, and must stay
// silent for its quiet period after the first sample. On the rule that
// counted silence from the latest request, the pod was quiet at once.
func TestSilenceCountsFromTheFirstSample(t *testing.T) {
	const pod, lb = "10.0.0.5:8080", "10.0.1.1:1"
	p := Period{Gaps: 15, Min: time.Second, Max: 10 * time.Second}
	tr := NewTracker(Filter{PodIP: netip.MustParseAddr("10.0.0.5"), Ports: []uint16{8080}})
	// A kept-alive connection whose latest request is 40 s old.
	idle := func() []Socket {
		return []Socket{sock(pod, lb, stateEstablished, &Info{LastDataRecv: 40 * time.Second, BytesReceived: 900, Counters: true, DataSegsIn: 3})}
	}
	for _, tc := range []struct {
		ms   int
		want bool
	}{{0, false}, {1000, false}, {9900, false}, {10000, true}} {
		tr.Observe(at(tc.ms), idle())
		if quiet, period := tr.Quiet(Hints{}, p, at(tc.ms)); quiet != tc.want || period != 10*time.Second {
			t.Errorf("%d ms after the first sample: quiet %v with period %v, want %v with 10s", tc.ms, quiet, period, tc.want)
		}
	}
}

// TestFewNewFlowsAreNoProof checks that an NLB's new flows need the proof
// an ALB node's requests need: one new flow, 50 ms after the first sample,
// says little of how often flows come, so a silence of a few seconds after
// it is no sign that the load balancer has stopped opening them. On the
// rule that gave flows k mean gaps (k·S/n), the pod was quiet after 0.75 s.
func TestFewNewFlowsAreNoProof(t *testing.T) {
	const pod, lb = "10.0.0.5:8080", "10.0.1.1:40000"
	nlb := Hints{Flows: []uint16{8080}}
	p := Period{Gaps: 15, Min: 100 * time.Millisecond, Max: 10 * time.Second}
	tr := NewTracker(Filter{PodIP: netip.MustParseAddr("10.0.0.5"), Ports: []uint16{8080}})
	established := sock(pod, "10.0.1.2:40000", stateEstablished, &Info{LastDataRecv: 5 * time.Millisecond, BytesReceived: 900, Counters: true, DataSegsIn: 3})
	tr.Observe(at(0), []Socket{established})
	flow := sock(pod, lb, stateEstablished, &Info{LastDataRecv: 0, BytesReceived: 100, Counters: true, DataSegsIn: 1})
	tr.Observe(at(50), []Socket{established, flow})
	for _, tc := range []struct {
		ms   int
		want bool
	}{{1000, false}, {5000, false}, {10000, false}, {10050, true}} {
		tr.Observe(at(tc.ms), []Socket{established})
		if quiet, period := tr.Quiet(nlb, p, at(tc.ms)); quiet != tc.want || period != 10*time.Second {
			t.Errorf("%d ms after the first sample: quiet %v with period %v, want %v with 10s", tc.ms, quiet, period, tc.want)
		}
	}
}
