package traffic

import (
	"context"
	"sync"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// Period sizes a quiet period: Gaps mean gaps between the load balancer's
// arrivals, within Min and Max. With Poisson arrivals at the observed rate,
// a silence of k mean gaps while the load balancer still sends has
// probability e^-k. Gaps zero makes it Min.
type Period struct {
	Gaps     int
	Min, Max time.Duration
}

// Size returns the quiet period for a mean gap.
func (p Period) Size(gap time.Duration) time.Duration {
	if p.Gaps <= 0 {
		return p.Min
	}
	return min(max(time.Duration(p.Gaps)*gap, p.Min), max(p.Max, p.Min))
}

// window is how long arrivals are watched to estimate the gap: a silence
// that long already makes the quiet period Max. Only the window's arrivals
// count, since the load balancer may be stopping by the time it ends.
func (p Period) window() time.Duration {
	if p.Gaps <= 0 {
		return 0
	}
	return p.Max / time.Duration(p.Gaps)
}

// Watcher samples the socket table in the background and answers questions
// about the traffic it saw.
type Watcher struct {
	signal string
	period Period
	mu     sync.Mutex
	t      *Tracker
	// sampled is closed and replaced after every sample.
	sampled chan struct{}
}

// Watch samples src every interval until ctx ends, sizing quiet periods by
// p from the arrivals of the first p.window(). A nil src (nothing to read)
// or a filter without ports makes a blind watcher, which finds every
// period quiet at once.
func Watch(ctx context.Context, src Source, f Filter, interval time.Duration, p Period) *Watcher {
	w := &Watcher{signal: contract.SignalNone, period: p, t: NewTracker(f), sampled: make(chan struct{})}
	w.t.CountFor(p.window())
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

func (w *Watcher) sample(src Source) {
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
func (w *Watcher) Signal() string { return w.signal }

func (w *Watcher) blind() bool { return w.signal == contract.SignalNone }

// QuietPeriod sizes the quiet period by the arrivals seen in the watch's
// window, first waiting for the window to close (or until ctx ends).
func (w *Watcher) QuietPeriod(ctx context.Context, h Hints) time.Duration {
	p := w.period
	if w.blind() {
		return p.Min
	}
	for {
		w.mu.Lock()
		closed := p.window() == 0 || !w.t.cut.IsZero()
		next := w.sampled
		if closed || ctx.Err() != nil {
			q := p.Size(w.t.MeanGap(h, time.Now()))
			w.mu.Unlock()
			return q
		}
		w.mu.Unlock()
		select {
		case <-next:
		case <-ctx.Done():
		}
	}
}

// WaitQuiet returns true once no load-balancer traffic has reached the pod
// for q, checked after every sample, or false when ctx ends first. A blind
// watcher returns true at once.
func (w *Watcher) WaitQuiet(ctx context.Context, h Hints, q time.Duration) bool {
	if w.blind() {
		return true
	}
	// The first verdict waits for a sample taken now, not one from before
	// the call.
	w.mu.Lock()
	next := w.sampled
	w.mu.Unlock()
	select {
	case <-next:
	case <-ctx.Done():
		return false
	}
	for {
		w.mu.Lock()
		now := time.Now()
		quiet := now.Sub(w.t.LastTraffic(h, now)) >= q
		next := w.sampled
		w.mu.Unlock()
		if quiet {
			return true
		}
		select {
		case <-next:
		case <-ctx.Done():
			return false
		}
	}
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
