// Package traffic tells, from inside a pod, when its load balancer has
// stopped sending it work. It samples the pod's TCP sockets (through
// NETLINK_SOCK_DIAG with tcp_info, or /proc/net/tcp where that is
// unavailable) and keeps, for each connection a load balancer could have
// opened, when it last received data and how often it did. From that it
// sizes, for each load-balancer address (an ALB node), a quiet period by
// that address's own traffic, and says when every address has had one.
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
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
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
	// arrivals counts the requests it carried since the first sample: the
	// data segments received (at least one per sample showing new data), or
	// one for appearing.
	arrivals int
	// dataBefore is when it last received data before the first sample;
	// zero if it did not exist then or never received data.
	dataBefore time.Time
	bytes      uint64
	segs       uint32
	counters   bool
	open       bool
	// closed is the first sample that showed it closed; zero while open.
	closed time.Time
}

// Tracker folds socket samples into per-connection histories. It does no
// I/O and reads no clock, so it is driven by tests as by the Monitor.
type Tracker struct {
	filter Filter
	// start and last are the first and latest samples.
	start, last time.Time
	conns       map[key]*conn
	// folded summarises connections dropped past maxConns, as one source.
	folded source
}

// NewTracker returns a tracker of the sockets f accepts.
func NewTracker(f Filter) *Tracker {
	return &Tracker{filter: f, conns: map[key]*conn{}}
}

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
		c.setOpen(open, now)
	}
	for k, c := range t.conns {
		if !seen[k] {
			c.setOpen(false, now)
		}
	}
	if len(t.conns) > maxConns {
		t.fold()
	}
	t.last = now
}

func (c *conn) setOpen(open bool, now time.Time) {
	if c.open && !open {
		c.closed = now
	}
	c.open = open
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
		t.folded.add(t.start, c, false, true)
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

// A connection already open at the first sample is a health check if its
// counters say it carried no more and it closed within one interval of
// that sample: the load balancer checks a target as often as every few
// hundred milliseconds, so the first sample often catches a check, which
// would otherwise count as its node's latest request. Until it closes it
// is traffic, since most such connections are the load balancer's
// kept-alive ones.
func (h Hints) classify(k key, c *conn, now time.Time) kind {
	for _, hc := range h.HealthChecks {
		if hc.Port != k.local.Port() || (c.counters && c.bytes > hc.MaxBytes) {
			continue
		}
		if !c.fresh {
			if c.counters && !c.open && c.closed.Sub(c.firstSeen) <= hc.Interval {
				return kindHealthCheck
			}
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
	last := later(t.start, t.folded.last)
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

// source is what the samples show of one load-balancer address: an ALB
// node, which connects from an address of its own, or for an NLB all
// flows at once (it may preserve each client's address).
type source struct {
	// last is when its traffic last reached the pod, pending connections
	// included; zero if never.
	last time.Time
	// age is how long before the first sample its latest data arrived
	// (aged is false when none did): for an address sending steadily, an
	// exponential gap of its own.
	age  time.Duration
	aged bool
	// n counts its arrivals since the first sample, latest their latest.
	n      int
	latest time.Time
}

// add folds c's arrivals into s; pending connections count as activity
// only, since they may yet turn out to be health checks.
func (s *source) add(start time.Time, c *conn, flows, counted bool) {
	s.last = later(s.last, c.activity(flows))
	if !counted {
		return
	}
	if flows {
		if c.fresh {
			s.n++
			s.latest = later(s.latest, c.start)
		}
		return
	}
	if !c.dataBefore.IsZero() {
		if age := start.Sub(c.dataBefore); !s.aged || age < s.age {
			s.age, s.aged = age, true
		}
	}
	if c.arrivals > 0 {
		s.n += c.arrivals
		s.latest = later(s.latest, c.lastData)
	}
}

// evidence is how many exponential gaps between the address's arrivals
// the samples show, and their total length: the age of its latest data
// before the watch, one gap, and the time from the first sample to its
// latest arrival since, which holds as many gaps as arrivals (the first of
// them from the first sample on, by the exponential's lack of memory). The
// trailing silence is left out: it is what is being judged. A tolerance
// is added to the length for the kernel's millisecond ages, so a length
// is never zero.
func (s source) evidence(start time.Time) (gaps int, span time.Duration) {
	if s.aged {
		gaps, span = 1, s.age
	}
	if s.n > 0 {
		gaps += s.n
		span += max(s.latest.Sub(start), 0)
	}
	return gaps, span + dataTolerance
}

// sources groups the load balancer's connections by address.
func (t *Tracker) sources(h Hints, now time.Time) map[netip.Addr]*source {
	out := map[netip.Addr]*source{}
	if !t.folded.last.IsZero() {
		f := t.folded
		out[netip.Addr{}] = &f
	}
	for k, c := range t.conns {
		kd := h.classify(k, c, now)
		if kd == kindHealthCheck {
			continue
		}
		flows := slices.Contains(h.Flows, k.local.Port())
		peer := k.remote.Addr()
		if flows {
			peer = netip.Addr{}
		}
		s := out[peer]
		if s == nil {
			s = &source{}
			out[peer] = s
		}
		s.add(t.start, c, flows, kd == kindTraffic)
	}
	for p, s := range out {
		if s.last.IsZero() && !s.aged {
			delete(out, p) // a connection that never carried data
		}
	}
	return out
}

// SourceState is one load-balancer address as Quiet judges it.
type SourceState struct {
	// Addr is the address; the zero Addr stands for an NLB's flows (and
	// connections folded past the tracker's bound).
	Addr netip.Addr
	// Gaps and Span are the evidence: that many gaps between its
	// arrivals, of that total length.
	Gaps int
	Span time.Duration
	// Last is when its traffic last reached the pod, Period the silence
	// it needs after that.
	Last   time.Time
	Period time.Duration
}

// Sources lists the load-balancer addresses as Quiet judges them at now,
// by address.
func (t *Tracker) Sources(h Hints, p Period, now time.Time) []SourceState {
	srcs := t.sources(h, now)
	out := make([]SourceState, 0, len(srcs))
	for _, a := range slices.SortedFunc(maps.Keys(srcs), netip.Addr.Compare) {
		s := srcs[a]
		n, span := s.evidence(t.start)
		out = append(out, SourceState{Addr: a, Gaps: n, Span: span, Last: s.last, Period: p.of(n, span)})
	}
	return out
}

// Describe lists the sources as Quiet judges them at now, for the hold's
// log: each address with its gaps, their length, its silence and its
// quiet period.
func (t *Tracker) Describe(h Hints, p Period, now time.Time) string {
	var parts []string
	for _, s := range t.Sources(h, p, now) {
		name := s.Addr.String()
		if !s.Addr.IsValid() {
			name = "flows"
		}
		parts = append(parts, fmt.Sprintf("%s: %d gaps in %v, silent %v of %v", name, s.Gaps, s.Span.Round(time.Millisecond),
			now.Sub(later(s.Last, t.start)).Round(time.Millisecond), s.Period.Round(time.Millisecond)))
	}
	return strings.Join(parts, "; ")
}

// Quiet says whether every load-balancer address has been silent for its
// quiet period, sized by p from that address's own arrivals, and the
// longest of those periods. Without any address the pod has heard from,
// the period is p's longest, from the first sample.
func (t *Tracker) Quiet(h Hints, p Period, now time.Time) (quiet bool, period time.Duration) {
	srcs := t.sources(h, now)
	if len(srcs) == 0 {
		q := p.of(0, 0)
		return now.Sub(t.start) >= q, q
	}
	quiet = true
	for _, s := range srcs {
		n, span := s.evidence(t.start)
		q := p.of(n, span)
		period = max(period, q)
		quiet = quiet && now.Sub(t.silentSince(s)) >= q
	}
	return quiet, period
}

// silentSince is when s's silence began as evidence that its node stopped
// routing to the pod: its latest traffic, but never before the first
// sample. Silence before the hold began says nothing of a deregistration
// that had not yet happened: an address that sends once a minute, last 40 s
// before the hold, is still routing when the hold begins, and counting
// those 40 s would release the pod at once, before its node has applied
// the deregistration.
func (t *Tracker) silentSince(s *source) time.Time {
	return later(s.last, t.start)
}
