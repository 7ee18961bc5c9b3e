package albemu

import (
	"slices"
	"time"
)

// Stop is the emulator's ground truth about one deregistration: when each
// node stopped routing new requests to the target. A client can only
// observe this indirectly (a request that still arrives); the emulator
// knows it, so tests and benchmarks can measure how close a release came
// to the moment it became safe.
type Stop struct {
	TargetGroupArn string
	Target         Target
	// Deregistered is when DeregisterTargets was answered.
	Deregistered time.Time
	// Lags are the lags drawn for the nodes, in node order.
	Lags []time.Duration
	// Nodes[i] is when node i applied the deregistration, removing the
	// target from its routing set (if its registration had reached it);
	// zero while it may still route new requests to the target.
	Nodes []time.Time
	// Serving[i] says whether node i had a client connection for the
	// target group before it applied the deregistration (or by now, while
	// it has not): a node no client reaches routes nothing, however late
	// it stops.
	Serving []bool
}

// Complete reports whether every node has stopped routing to the target.
func (s Stop) Complete() bool {
	return !slices.ContainsFunc(s.Nodes, time.Time.IsZero)
}

// TrueStop is the latest stop of the nodes that clients reach: from then on
// no new request reaches the target. It is the deregistration itself when
// no client reached any node, and zero until every node has stopped.
func (s Stop) TrueStop() time.Time {
	if !s.Complete() {
		return time.Time{}
	}
	last := s.Deregistered
	for i, t := range s.Nodes {
		if t.After(last) && (s.Serving == nil || s.Serving[i]) {
			last = t
		}
	}
	return last
}

// clientConnected records that node n got a client connection for tg.
func (e *Emulator) clientConnected(tg *targetGroup, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if tg.clients == nil {
		tg.clients = make([]time.Time, len(e.nodes))
	}
	if tg.clients[n].IsZero() {
		tg.clients[n] = time.Now()
	}
}

// servingLocked fills in s.Serving from its target group's client
// connections; a group since deleted leaves it nil, so every node counts.
func (e *Emulator) servingLocked(s *Stop) {
	tg, err := e.groupLocked(s.TargetGroupArn)
	if err != nil {
		return
	}
	s.Serving = make([]bool, len(s.Nodes))
	for i, stopped := range s.Nodes {
		if i < len(tg.clients) && !tg.clients[i].IsZero() {
			s.Serving[i] = stopped.IsZero() || tg.clients[i].Before(stopped)
		}
	}
}

// Stops are every deregistration's ground truth so far, oldest first.
func (e *Emulator) Stops() []Stop {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Stop, len(e.stops))
	for i, s := range e.stops {
		out[i] = s.clone()
		e.servingLocked(&out[i])
	}
	return out
}

// TargetStop is the ground truth of the target's latest deregistration
// from the target group; false if it has never been deregistered.
func (e *Emulator) TargetStop(tgARN string, t Target) (Stop, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range slices.Backward(e.stops) {
		if s.TargetGroupArn == tgARN && s.Target == t {
			c := s.clone()
			e.servingLocked(&c)
			return c, true
		}
	}
	return Stop{}, false
}

func (s *Stop) clone() Stop {
	c := *s
	c.Lags, c.Nodes = slices.Clone(s.Lags), slices.Clone(s.Nodes)
	return c
}
