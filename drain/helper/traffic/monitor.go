package traffic

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// Period sizes the quiet period of one load-balancer address from the gaps
// between its arrivals, within Min and Max, so that an address still
// sending breaks it with a chance of e^-k (k = Gaps) whatever the number of
// gaps seen. With n gaps of total length S, if the address sends as a
// Poisson process at any rate, its next gap G and the n before it are
// independent exponentials and P(G >= cS) = (1+c)^-n; the period cS with
// c = e^(k/n) - 1 makes that e^-k. That is about kS/n, k mean gaps, once n
// is well above k, and far longer when few gaps were seen: one gap of S
// would allow a period of only kS at a chance of 1/(1+k) (1/16 for k = 15),
// and an address sending once a minute, first seen 50 ms before its next
// request, would be judged quiet after a second. Gaps zero makes every
// period Min.
type Period struct {
	Gaps     int
	Min, Max time.Duration
}

// of is the quiet period after n gaps of total length span, within Min
// and Max: Min without gaps to size by (Gaps zero), Max with none seen.
func (p Period) of(n int, span time.Duration) time.Duration {
	hi := max(p.Max, p.Min)
	switch {
	case p.Gaps <= 0:
		return p.Min
	case n <= 0:
		return hi
	}
	q := float64(span) * math.Expm1(float64(p.Gaps)/float64(n))
	if q >= float64(hi) {
		return hi
	}
	return max(time.Duration(q), p.Min)
}

// Monitor samples the socket table in the background and answers questions
// about the traffic it saw.
type Monitor struct {
	signal string
	period Period
	mu     sync.Mutex
	t      *Tracker
	// sampled is closed and replaced after every sample.
	sampled chan struct{}
}

// Start samples src every interval until ctx ends, sizing quiet periods by
// p. A nil src (nothing to read) or a filter without ports makes a blind
// watcher, which finds the pod quiet at once.
func Start(ctx context.Context, src Source, f Filter, interval time.Duration, p Period) *Monitor {
	w := &Monitor{signal: contract.SignalNone, period: p, t: NewTracker(f), sampled: make(chan struct{})}
	if src == nil || len(f.Ports) == 0 {
		return w
	}
	w.signal = src.Signal()
	w.sample(src) // the first sample is the baseline: synchronously, before the hold goes on
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				w.sample(src)
			}
		}
	}()
	return w
}

func (w *Monitor) sample(src Source) {
	socks, err := src.Sockets()
	if err != nil {
		return // a transient failure; the next sample decides
	}
	w.mu.Lock()
	w.t.Observe(time.Now(), socks)
	close(w.sampled)
	w.sampled = make(chan struct{})
	w.mu.Unlock()
}

// Signal says how traffic is seen: one of the contract's Signal values.
func (w *Monitor) Signal() string { return w.signal }

func (w *Monitor) blind() bool { return w.signal == contract.SignalNone }

// WaitQuiet returns true once every load-balancer address the pod has heard
// from has been silent for its own quiet period (Tracker.Quiet), checked
// after every sample, or false when ctx ends first; period is the longest
// of those periods at the last check. A blind watcher returns true at once.
//
// Each address is judged by its own rate because the load balancer's nodes
// stop one by one: once only a straggler still routes to the pod, it sends
// only its share of the traffic, and a period sized by the pod's whole rate
// would often pass between two of its requests.
func (w *Monitor) WaitQuiet(ctx context.Context, h Hints) (quiet bool, period time.Duration) {
	if w.blind() {
		return true, w.period.Min
	}
	// The first verdict waits for a sample taken now, not one from before
	// the call.
	w.mu.Lock()
	next := w.sampled
	w.mu.Unlock()
	for {
		ended := false
		select {
		case <-next:
		case <-ctx.Done():
			ended = true
		}
		w.mu.Lock()
		quiet, period = w.t.Quiet(h, w.period, time.Now())
		next = w.sampled
		w.mu.Unlock()
		switch {
		case ended:
			return false, period
		case quiet:
			return true, period
		}
	}
}

// Sources describes the load-balancer addresses as the last verdict would
// judge them now (Tracker.Describe), for the hold's log.
func (w *Monitor) Sources(h Hints) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t.Describe(h, w.period, time.Now())
}

// HintsFrom converts the watcher's description of the traffic.
func HintsFrom(t *contract.Traffic) Hints {
	var h Hints
	if t == nil {
		return h
	}
	for _, p := range t.Ports {
		if p.Flows {
			h.Flows = append(h.Flows, uint16(p.Port))
		}
	}
	for _, hc := range t.HealthChecks {
		h.HealthChecks = append(h.HealthChecks, HealthCheck{
			Port:     uint16(hc.Port),
			MaxBytes: healthCheckBytes(hc),
			Interval: time.Duration(hc.IntervalMillis) * time.Millisecond,
		})
	}
	return h
}

// healthCheckBytes bounds what one health check sends: an HTTP request to
// its path with the few headers a load balancer adds, and for HTTPS a TLS
// handshake first; a TCP check sends nothing.
func healthCheckBytes(hc contract.HealthCheck) uint64 {
	const request, handshake = 1 << 10, 8 << 10
	switch hc.Protocol {
	case "TCP":
		return 0
	case "HTTPS":
		return handshake + request + uint64(len(hc.Path))
	default:
		return request + uint64(len(hc.Path))
	}
}
