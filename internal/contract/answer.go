package contract

import (
	"encoding/json"
	"time"
)

// Answer is the watcher's answer to a hold as both sides handle it: either
// Final, an outcome the watcher decided and counts, or a Handoff, whose
// outcome the helper's quiet wait decides and reports in a HoldEnd. One
// of the two is set; NewFinal and NewHandoff make them.
//
// Its JSON is HoldResponse, the wire form that helpers in running pods
// read: a hand-off travels as OutcomeDeregistering, and the bound both as
// BoundMillis and, with the traffic, as Traffic.BoundMillis.
type Answer struct {
	Final   *Final
	Handoff *Handoff
	// Message says why, for the helper's log.
	Message string
}

// Final ends a hold with the watcher's outcome. The helper still waits for
// quiet after some, within Wait.Bound (Answer.WaitsForQuiet).
type Final struct {
	// Outcome is never OutcomeDeregistering, which is a Handoff.
	Outcome Outcome
	Wait
}

// Handoff hands a hold's end to the helper under policy "quiet":
// deregistration has begun in every target group, and the pod may stop
// once no load-balancer traffic has reached it for its quiet period, or at
// Wait.Bound. The helper reports which in a HoldEnd.
type Handoff struct {
	Wait
}

// Wait is what the watcher tells the helper for its quiet wait.
type Wait struct {
	// Bound is what was left of the hold's bound (the earliest of max-hold,
	// the grace period less the application's budget, and the
	// deregistration delay plus margin) when the watcher answered; the
	// quiet wait ends by then. Zero: unknown, max-hold bounds it.
	Bound time.Duration
	// Traffic describes the load balancer's traffic to the pod; nil when
	// the watcher does not know it. Its BoundMillis is only the wire's copy
	// of Bound, and zero here.
	Traffic *Traffic
}

// NewFinal is the answer that ends a hold with o.
func NewFinal(o Outcome, message string, w Wait) Answer {
	return Answer{Final: &Final{Outcome: o, Wait: w}, Message: message}
}

// NewHandoff is the answer that hands a hold to the helper's quiet wait.
func NewHandoff(message string, w Wait) Answer {
	return Answer{Handoff: &Handoff{Wait: w}, Message: message}
}

// Wait is the answer's quiet wait, whichever kind it is.
func (a Answer) Wait() Wait {
	switch {
	case a.Handoff != nil:
		return a.Handoff.Wait
	case a.Final != nil:
		return a.Final.Wait
	}
	return Wait{}
}

// Outcome is the final outcome; empty for a hand-off.
func (a Answer) Outcome() Outcome {
	if a.Final == nil {
		return ""
	}
	return a.Final.Outcome
}

// WaitsForQuiet is the helper's half of "may the pod stop?": whether it
// waits for quiet after the answer. It does after a hand-off, whose end the
// quiet wait decides, and after a final outcome that leaves traffic
// possible (deregistered, draining_settled, fallback). It does not when the
// pod is not going away (a probe killed the container), is in no load
// balancer's service, or its hold reached its bound (the watcher's timeout,
// or max-hold).
func (a Answer) WaitsForQuiet() bool {
	switch a.Outcome() {
	case OutcomeNotTerminating, OutcomeNotRegistered, OutcomeTimeout:
		return a.Handoff != nil
	}
	return true
}

// Later is the answer as it stands d after it was given, to be passed on:
// its bound shortened by d, to a millisecond at least, since zero would
// read as no bound.
func (a Answer) Later(d time.Duration) Answer {
	w := a.Wait()
	if w.Bound <= 0 {
		return a
	}
	w.Bound = max(w.Bound-d, time.Millisecond)
	switch {
	case a.Handoff != nil:
		a.Handoff = &Handoff{Wait: w}
	case a.Final != nil:
		a.Final = &Final{Outcome: a.Final.Outcome, Wait: w}
	}
	return a
}

// Response is the answer's wire form.
func (a Answer) Response() HoldResponse {
	r := HoldResponse{Outcome: a.Outcome(), Message: a.Message}
	if a.Handoff != nil {
		r.Outcome = OutcomeDeregistering
	}
	w := a.Wait()
	if w.Bound > 0 {
		r.BoundMillis = max(w.Bound.Milliseconds(), 1)
	}
	if w.Traffic != nil {
		t := *w.Traffic
		t.BoundMillis = r.BoundMillis
		r.Traffic = &t
	}
	return r
}

// Answer reads the wire form. A watcher of an earlier version sent a
// hand-off's bound only in Traffic.BoundMillis.
func (r HoldResponse) Answer() Answer {
	w := Wait{Bound: boundOf(r.BoundMillis)}
	if r.Traffic != nil {
		t := *r.Traffic
		if w.Bound == 0 {
			w.Bound = boundOf(t.BoundMillis)
		}
		t.BoundMillis = 0
		w.Traffic = &t
	}
	if r.Outcome == OutcomeDeregistering {
		return NewHandoff(r.Message, w)
	}
	return NewFinal(r.Outcome, r.Message, w)
}

// boundOf reads a bound in milliseconds: none when not positive, and no
// longer than any hold can be (MaxHoldTimeout), which also keeps a huge
// count from overflowing.
func boundOf(ms int64) time.Duration {
	if ms <= 0 {
		return 0
	}
	return time.Duration(min(ms, MaxHoldTimeout.Milliseconds())) * time.Millisecond
}

// MarshalJSON writes the wire form, HoldResponse.
func (a Answer) MarshalJSON() ([]byte, error) {
	return json.Marshal(a.Response())
}

// UnmarshalJSON reads the wire form, HoldResponse.
func (a *Answer) UnmarshalJSON(b []byte) error {
	var r HoldResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*a = r.Answer()
	return nil
}
