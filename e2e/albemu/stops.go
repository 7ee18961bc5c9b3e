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
}

// Complete reports whether every node has stopped routing to the target.
func (s Stop) Complete() bool {
	return !slices.ContainsFunc(s.Nodes, time.Time.IsZero)
}

// TrueStop is the latest of the nodes' stops: from then on no new request
// reaches the target. Zero until every node has stopped.
func (s Stop) TrueStop() time.Time {
	if !s.Complete() {
		return time.Time{}
	}
	var last time.Time
	for _, t := range s.Nodes {
		if t.After(last) {
			last = t
		}
	}
	return last
}

// Stops are every deregistration's ground truth so far, oldest first.
func (e *Emulator) Stops() []Stop {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Stop, len(e.stops))
	for i, s := range e.stops {
		out[i] = s.clone()
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
			return s.clone(), true
		}
	}
	return Stop{}, false
}

func (s *Stop) clone() Stop {
	c := *s
	c.Lags, c.Nodes = slices.Clone(s.Lags), slices.Clone(s.Nodes)
	return c
}
