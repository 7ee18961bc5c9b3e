// Package release is the watcher's release policy as pure functions: given
// what ELBv2 last said about a pod's target in each of its target groups,
// may the pod stop now, and why; and how long may a hold last at most.
// Keeping it free of I/O and clocks makes every rule a table test.
package release

import (
	"fmt"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// Policy is when a target counts as out of service.
type Policy string

const (
	// PolicyDeregistered waits until the target is absent or unused: the
	// deregistration delay is over and the ALB holds no request to the pod.
	PolicyDeregistered Policy = "deregistered"
	// PolicyDraining also accepts a target that has been draining for the
	// settle time, for target groups with long deregistration delays where
	// waiting them out would hold pods for minutes.
	PolicyDraining Policy = "draining"
	// PolicyQuiet hands the hold to the in-pod helper once the target is
	// draining, unused or absent everywhere (deregistration has begun in
	// every target group): the helper then releases the pod once no
	// load-balancer traffic has reached it for its quiet period, within
	// the hold's bounds.
	PolicyQuiet Policy = "quiet"
)

// ParsePolicy reads a policy name from a flag.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case PolicyDeregistered, PolicyDraining, PolicyQuiet:
		return p, nil
	}
	return "", fmt.Errorf("release policy %q: want %q, %q or %q", s, PolicyQuiet, PolicyDeregistered, PolicyDraining)
}

// The ELBv2 target states the policy singles out; every other state
// (initial, healthy, unhealthy, unavailable) means the target is registered.
const (
	StateUnused            = "unused"
	StateDraining          = "draining"
	StateUnhealthyDraining = "unhealthy.draining"
)

// Observation is what is known of the pod's target in one target group.
type Observation struct {
	// Seen is false until the first successful DescribeTargetHealth.
	Seen bool
	// State is the target's state; empty when the target group did not list it.
	State string
	// GroupGone is set when the target group no longer exists, so it cannot
	// send the pod anything.
	GroupGone bool
	// DrainingSince is when the target was first seen draining; zero otherwise.
	DrainingSince time.Time
	// Failures counts consecutive failed polls since the last success.
	Failures int
}

// Observe folds one successful poll into an observation.
func Observe(prev Observation, state string, groupGone bool, now time.Time) Observation {
	next := Observation{Seen: true, State: state, GroupGone: groupGone}
	if isDraining(state) && !groupGone {
		next.DrainingSince = now
		if !prev.DrainingSince.IsZero() {
			next.DrainingSince = prev.DrainingSince
		}
	}
	return next
}

// Failed folds one failed poll into an observation.
func Failed(prev Observation) Observation {
	prev.Failures++
	return prev
}

func isDraining(state string) bool {
	return state == StateDraining || state == StateUnhealthyDraining
}

// IsOut reports whether a state means the target is not registered: absent
// from the listing or unused.
func IsOut(o Observation) bool {
	return o.GroupGone || o.State == "" || o.State == StateUnused
}

// Input is everything Decide looks at.
type Input struct {
	Policy Policy
	// Settle is how long a target must have drained under PolicyDraining.
	Settle time.Duration
	// FallbackAfter is how many consecutive failed polls of one target group
	// end the hold with OutcomeFallback.
	FallbackAfter int
	Now           time.Time
	// WasRegistered is whether the pod was ever seen as a registered target,
	// during this hold or (after a watcher restart) from the load balancer
	// controller's readiness gate on the pod. It decides whether a target
	// that is out counts as deregistered or as never registered.
	WasRegistered bool
	// Targets holds one observation per target group of the pod.
	Targets []Observation
}

// Decision is whether the watcher's part of the hold is over, and how.
type Decision struct {
	Release bool
	// Outcome is set when Release is, unless Handoff is.
	Outcome contract.Outcome
	// Handoff, with Release, hands the hold to the helper's quiet wait
	// (PolicyQuiet): the watcher's part is over, the hold's is not.
	Handoff bool
}

// Decide applies the policy. The pod is released when the target is out of
// service in every target group; a target still initial, healthy,
// unhealthy or unavailable is registered (the load balancer controller has
// not deregistered it yet) and keeps the hold. Under PolicyQuiet a target
// draining everywhere it is not out ends the watcher's part with a
// hand-off, and the helper's quiet period decides.
func Decide(in Input) Decision {
	for _, o := range in.Targets {
		if in.FallbackAfter > 0 && o.Failures >= in.FallbackAfter {
			return Decision{Release: true, Outcome: contract.OutcomeFallback}
		}
	}
	settled, draining := false, false
	for _, o := range in.Targets {
		switch {
		case !o.Seen:
			return Decision{}
		case IsOut(o):
		case in.Policy == PolicyDraining && !o.DrainingSince.IsZero() && in.Now.Sub(o.DrainingSince) >= in.Settle:
			settled = true
		case in.Policy == PolicyQuiet && !o.DrainingSince.IsZero():
			draining = true
		default:
			return Decision{}
		}
	}
	switch {
	case settled:
		return Decision{Release: true, Outcome: contract.OutcomeDrainingSettled}
	case draining:
		return Decision{Release: true, Handoff: true}
	case in.WasRegistered:
		return Decision{Release: true, Outcome: contract.OutcomeDeregistered}
	default:
		return Decision{Release: true, Outcome: contract.OutcomeNotRegistered}
	}
}

// Bounds are the limits a hold must respect.
type Bounds struct {
	// Requested is the helper's deadline: now plus what it said was left.
	Requested time.Time
	// Grace is when the kubelet kills the pod (its deletionTimestamp); zero if unknown.
	Grace time.Time
	// Budget is the application's shutdown budget, which the hold leaves
	// it before Grace: the hold ends Budget before Grace, or halfway from
	// TerminationStart to Grace when the budget does not fit in half the
	// grace period (a grace period shortened by a drain or a spot
	// interruption), so hold and application share it.
	Budget time.Duration
	// TerminationStart is when the pod began terminating, from which the
	// target groups' deregistration delays count.
	TerminationStart time.Time
	// MaxDeregistrationDelay is the longest deregistration delay of the
	// pod's target groups; negative when unknown.
	MaxDeregistrationDelay time.Duration
	// Margin is added to the deregistration delay for the load balancer
	// controller's reaction and the poll interval.
	Margin time.Duration
}

// DefaultBudget is the shutdown budget of a hold whose helper sent none:
// Kubernetes' default grace period.
const DefaultBudget = 30 * time.Second

// Deadline is the earliest of the bounds: a hold never outlasts the helper's
// max-hold, the pod's grace period less the application's budget, or the
// time the ALB can still be using the target (its deregistration delay plus
// a margin).
func Deadline(b Bounds) time.Time {
	d := b.Requested
	if !b.Grace.IsZero() {
		leave := b.Budget
		if !b.TerminationStart.IsZero() {
			leave = min(leave, b.Grace.Sub(b.TerminationStart)/2)
		}
		if g := b.Grace.Add(-max(leave, 0)); g.Before(d) {
			d = g
		}
	}
	if b.MaxDeregistrationDelay >= 0 && !b.TerminationStart.IsZero() {
		if t := b.TerminationStart.Add(b.MaxDeregistrationDelay + b.Margin); t.Before(d) {
			d = t
		}
	}
	return d
}
