// Package traffic tells, from inside a pod, when its load balancer has
// stopped sending it work. It samples the pod's TCP sockets (through
// NETLINK_SOCK_DIAG with tcp_info, or /proc/net/tcp where that is
// unavailable) and keeps, for each connection a load balancer could have
// opened, when it last received data and how often it did. From that it
// sizes a quiet period by the pod's own traffic and says when the pod has
// had one.
//
// Only load-balancer traffic counts: connections to a served port of the
// pod's IP from anyone but the node (the kubelet's probes), loopback or the
// pod itself; outbound connections have an ephemeral local port and never
// match. The load balancer's health checks, which come from the same
// addresses, are told apart once the watcher has said where they go: a new
// connection to a health-check port that carries at most a health check's
// worth of bytes and closes is one. What counts as traffic depends on the
// load balancer: for an ALB (HTTP, HTTPS, gRPC) any data received, since it
// reuses kept-alive connections; for an NLB (TCP, TLS, UDP) only a new
// flow, since established flows legitimately continue while draining.
package traffic

import (
	"net/netip"
	"slices"
	"time"
)

// maxConns bounds the connections tracked one by one; past it, closed
// connections are folded into a summary that counts them as traffic.
const maxConns = 1 << 14

// dataTolerance is how far a socket's last-data time may move without new
// data: the kernel counts it in jiffies and samples are not instantaneous.
const dataTolerance = 15 * time.Millisecond

// HealthCheck is where and how often a target group checks the pod.
type HealthCheck struct {
	Port uint16
	// MaxBytes is the most a health check sends: a request to its path,
	// plus a TLS handshake for HTTPS; zero for a TCP check.
	MaxBytes uint64
	// Interval bounds how long a health check's connection stays open.
	Interval time.Duration
}

// Hints are what the watcher says about the load balancer's traffic; the
// zero value treats every served port as an ALB's and knows no health checks.
type Hints struct {
	// Flows lists the ports an NLB sends to.
	Flows []uint16
	// HealthChecks are the target groups' health checks.
	HealthChecks []HealthCheck
}

type key struct{ local, remote netip.AddrPort }

// conn is what is known of one connection.
type conn struct {
	// fresh is set for a connection first seen after the first sample: a new flow.
	fresh bool
	// firstSeen is the sample that first showed it, start the latest time
	// it certainly existed (firstSeen less its first last-data age).
	firstSeen, start time.Time
	// lastData is when it last received data; zero when unknown.
	lastData time.Time
	// arrivals counts the requests it carried: the data segments received
	// (at least one per sample showing new data), or one for appearing.
	arrivals int
	// early is arrivals as it stood when the rate window closed.
	early int
	// dataBefore is when it last received data before the first sample;
	// zero if it did not exist then or never received data.
	dataBefore time.Time
	bytes      uint64
	segs       uint32
	counters   bool
	open       bool
}

// Tracker folds socket samples into per-connection histories. It does no
// I/O and reads no clock, so it is driven by tests as by the Watcher.
type Tracker struct {
	filter Filter
	// start and last are the first and latest samples.
	start, last time.Time
	conns       map[key]*conn
	// window is how long arrivals are counted for the rate, from the first
	// sample; zero counts them all. cut is the sample that closed it.
	window time.Duration
	cut    time.Time
	// folded summarises connections dropped past maxConns.
	foldedLast                  time.Time
	foldedArrivals, foldedEarly int
}

// NewTracker returns a tracker of the sockets f accepts.
func NewTracker(f Filter) *Tracker {
	return &Tracker{filter: f, conns: map[key]*conn{}}
}

// CountFor limits the arrivals that MeanGap counts to those of the first d
// of the watch (zero: no limit). A hold is watched while its load balancer
// stops sending, one node after another, so arrivals counted over the whole
// watch dilute the rate with the very silence being waited for: at a few
// requests a second the quiet period then grows to its maximum, and it
// grows longer the later the question is asked.
func (t *Tracker) CountFor(d time.Duration) { t.window = d }

// Observe folds in the socket table as it was at now.
func (t *Tracker) Observe(now time.Time, socks []Socket) {
	first := t.start.IsZero()
	if first {
		t.start = now
	}
	seen := make(map[key]bool, len(t.conns))
	for _, s := range socks {
		if !t.filter.accepts(s) {
			continue
		}
		k := key{s.Local, s.Remote}
		seen[k] = true
		open := s.State == stateEstablished || s.State == stateSynRecv
		c := t.conns[k]
		if c == nil || (!c.open && open) { // a new connection, or a reused 4-tuple
			c = &conn{fresh: !first, firstSeen: now, start: now}
			if s.Info != nil {
				c.start = now.Add(-s.Info.LastDataRecv)
				c.lastData = c.start
				if first && (!s.Info.Counters || s.Info.BytesReceived > 0) {
					c.dataBefore = c.start
				}
			} else if c.fresh {
				c.lastData = now
			}
			if c.fresh {
				c.arrivals = 1
			}
			t.conns[k] = c
		} else if s.Info != nil && newData(c, now, s.Info, open) {
			// A request mostly fits in a segment; larger ones count more
			// than once, which only shortens the quiet period to its minimum.
			c.arrivals += max(1, int(s.Info.DataSegsIn)-int(c.segs))
			// The data came after the previous sample, whatever the
			// kernel's coarse age says.
			c.lastData = later(now.Add(-s.Info.LastDataRecv), t.last)
		}
		if s.Info != nil {
			c.bytes, c.segs, c.counters = s.Info.BytesReceived, s.Info.DataSegsIn, s.Info.Counters
		}
		c.open = open
	}
	for k, c := range t.conns {
		if !seen[k] {
			c.open = false
		}
	}
	if t.window > 0 && t.cut.IsZero() && now.Sub(t.start) >= t.window {
		t.cut = now
		for _, c := range t.conns {
			c.early = c.arrivals
		}
		t.foldedEarly = t.foldedArrivals
	}
	if len(t.conns) > maxConns {
		t.fold()
	}
	t.last = now
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// newData reports whether a socket received data since the last sample.
// The kernel counts a FIN as a byte received, so a peer closing its end is
// told from data by the data-segment count or, without it, by the state.
func newData(c *conn, now time.Time, in *Info, open bool) bool {
	if !in.Counters || !c.counters {
		return now.Add(-in.LastDataRecv).After(c.lastData.Add(dataTolerance))
	}
	if in.DataSegsIn != c.segs || in.DataSegsIn > 0 {
		return in.DataSegsIn > c.segs
	}
	grew := in.BytesReceived - c.bytes
	return in.BytesReceived > c.bytes && (grew > 1 || open)
}

// fold drops every closed connection, keeping what a verdict needs of them
// as if they were all traffic: a conservative summary, since a dropped
// health check then delays quiet instead of a request being missed.
func (t *Tracker) fold() {
	for k, c := range t.conns {
		if c.open {
			continue
		}
		if a := c.activity(false); a.After(t.foldedLast) {
			t.foldedLast = a
		}
		t.foldedArrivals += c.arrivals
		t.foldedEarly += c.early
		delete(t.conns, k)
	}
}

// activity is when c last carried traffic, zero if never.
func (c *conn) activity(flows bool) time.Time {
	if flows {
		if c.fresh {
			return c.start
		}
		return time.Time{}
	}
	return c.lastData
}

// kind classifies a connection under h.
type kind int

const (
	kindTraffic kind = iota
	kindHealthCheck
	// kindPending is a new connection that may still turn out a health
	// check; it counts as traffic until it does.
	kindPending
)

func (h Hints) classify(k key, c *conn, now time.Time) kind {
	if !c.fresh {
		return kindTraffic
	}
	for _, hc := range h.HealthChecks {
		if hc.Port != k.local.Port() || (c.counters && c.bytes > hc.MaxBytes) {
			continue
		}
		if !c.open {
			return kindHealthCheck
		}
		if now.Sub(c.firstSeen) < hc.Interval {
			return kindPending
		}
	}
	return kindTraffic
}

// LastTraffic is when load-balancer traffic last reached the pod, as far
// as the samples show; never before the first sample, since what came just
// before it is unknown.
func (t *Tracker) LastTraffic(h Hints, now time.Time) time.Time {
	last := t.start
	if t.foldedLast.After(last) {
		last = t.foldedLast
	}
	for k, c := range t.conns {
		if h.classify(k, c, now) == kindHealthCheck {
			continue
		}
		if a := c.activity(slices.Contains(h.Flows, k.local.Port())); a.After(last) {
			last = a
		}
	}
	return last
}

// MeanGap estimates the mean time between the load balancer's arrivals
// (requests, that is data segments received, for an ALB; new flows for an
// NLB), counted from the first sample until now or the end of the window
// set by CountFor. Before the first sample, each load-balancer address (an
// ALB node) adds its latest data received and the silence since: for a
// node sending at a steady rate that silence is one of its gaps, whichever
// of its kept-alive connections it used. With m nodes sending alike, the
// window's arrivals plus the m last ones, over the window plus the nodes'
// mean silence, give the pod's gap, so a watch that has seen few arrivals,
// or none, is not left to guess from them alone.
func (t *Tracker) MeanGap(h Hints, now time.Time) time.Duration {
	span := now.Sub(t.start)
	if !t.cut.IsZero() {
		span = t.cut.Sub(t.start)
	}
	n, before := t.arrivals(h, now)
	switch {
	case len(before) > 0:
		var sum time.Duration
		for _, b := range before {
			sum += b
		}
		m := time.Duration(len(before))
		return (span + sum/m) / (time.Duration(n) + m)
	case n > 0:
		return span / time.Duration(n)
	}
	return span
}

// arrivals counts the arrivals within the window, and says for each
// load-balancer address how long before the first sample its latest data
// arrived.
func (t *Tracker) arrivals(h Hints, now time.Time) (n int, before map[netip.Addr]time.Duration) {
	cut := !t.cut.IsZero()
	n, before = t.foldedArrivals, map[netip.Addr]time.Duration{}
	if cut {
		n = t.foldedEarly
	}
	for k, c := range t.conns {
		if h.classify(k, c, now) == kindHealthCheck {
			continue
		}
		if slices.Contains(h.Flows, k.local.Port()) {
			if c.fresh && (!cut || !c.firstSeen.After(t.cut)) {
				n++
			}
			continue
		}
		if cut {
			n += c.early
		} else {
			n += c.arrivals
		}
		if !c.dataBefore.IsZero() {
			age, peer := t.start.Sub(c.dataBefore), k.remote.Addr()
			if b, ok := before[peer]; !ok || age < b {
				before[peer] = age
			}
		}
	}
	return n, before
}
