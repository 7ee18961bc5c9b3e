package albemu

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// Target is an ip target. Port 0 means the target group's port.
type Target struct {
	ID   string
	Port int32
}

// String is "ip:port".
func (t Target) String() string {
	return net.JoinHostPort(t.ID, strconv.Itoa(int(t.Port)))
}

// ParseTarget makes a Target from "ip:port", e.g. a test server's address.
func ParseTarget(hostport string) (Target, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return Target{}, fmt.Errorf("albemu: parse target: %w", err)
	}
	p, err := parsePort(port)
	if err != nil {
		return Target{}, fmt.Errorf("albemu: parse target: %w", err)
	}
	return Target{ID: host, Port: p}, nil
}

// Target states and reasons, as DescribeTargetHealth reports them.
const (
	StateInitial   = "initial"
	StateHealthy   = "healthy"
	StateUnhealthy = "unhealthy"
	StateUnused    = "unused"
	StateDraining  = "draining"

	ReasonRegistrationInProgress   = "Elb.RegistrationInProgress"
	ReasonInitialHealthChecking    = "Elb.InitialHealthChecking"
	ReasonResponseCodeMismatch     = "Target.ResponseCodeMismatch"
	ReasonTimeout                  = "Target.Timeout"
	ReasonFailedHealthChecks       = "Target.FailedHealthChecks"
	ReasonNotRegistered            = "Target.NotRegistered"
	ReasonDeregistrationInProgress = "Target.DeregistrationInProgress"
)

// descriptions are AWS's texts for reasons that have a fixed one.
var descriptions = map[string]string{
	ReasonRegistrationInProgress:   "Target registration is in progress",
	ReasonInitialHealthChecking:    "Initial health checks in progress",
	ReasonDeregistrationInProgress: "Target deregistration is in progress",
	ReasonNotRegistered:            "Target is not registered to the target group",
	ReasonFailedHealthChecks:       "Health checks failed",
	ReasonTimeout:                  "Request timed out",
}

// TargetHealth is one DescribeTargetHealth entry.
type TargetHealth struct {
	Target          Target
	HealthCheckPort string
	State           string
	Reason          string // empty when healthy
	Description     string // empty when healthy
}

// RegisterTargets behaves like the API call of the same name.
func (e *Emulator) RegisterTargets(tgARN string, targets ...Target) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(tgARN)
	if err != nil {
		return err
	}
	// Checked rather than returned directly: a nil *APIError in an error
	// interface would not be nil.
	if err := e.registerLocked(tg, targets); err != nil {
		return err
	}
	return nil
}

// DeregisterTargets behaves like the API call of the same name: unknown
// targets are ignored.
func (e *Emulator) DeregisterTargets(tgARN string, targets ...Target) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(tgARN)
	if err != nil {
		return err
	}
	if err := e.deregisterLocked(tg, targets); err != nil {
		return err
	}
	return nil
}

// resolveTargets validates ids and fills in default ports. Registration
// also enforces the loopback rule, which is what keeps the emulator from
// ever sending traffic elsewhere.
func (e *Emulator) resolveTargets(tg *targetGroup, targets []Target, registering bool) ([]Target, *APIError) {
	if len(targets) == 0 {
		return nil, validationErrorf("Targets must contain at least one target")
	}
	out := make([]Target, 0, len(targets))
	for _, t := range targets {
		ip, err := netip.ParseAddr(t.ID)
		if err != nil || !ip.Is4() {
			return nil, invalidTargetf("The IP address '%s' is not a valid IPv4 address", t.ID)
		}
		if registering && !e.contactable(ip) && !e.opts.AllowNonLoopbackTargets {
			return nil, invalidTargetf("The IP address '%s' is not a loopback address; the emulator only accepts 127.0.0.0/8 targets", t.ID)
		}
		if t.Port == 0 {
			t.Port = tg.port
		}
		if t.Port < 1 || t.Port > 65535 {
			return nil, validationErrorf("Target port %d is not in 1-65535", t.Port)
		}
		out = append(out, t)
	}
	return out, nil
}

// TargetHealth is what DescribeTargetHealth would answer: every current
// target, or the ones asked for (unknown ones as unused).
func (e *Emulator) TargetHealth(tgARN string, targets ...Target) ([]TargetHealth, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(tgARN)
	if err != nil {
		return nil, err
	}
	th, err := e.describeHealthLocked(tg, targets)
	if err != nil {
		return nil, err
	}
	return th, nil
}

func (e *Emulator) describeHealthLocked(tg *targetGroup, targets []Target) ([]TargetHealth, *APIError) {
	entry := func(t Target, state, reason, desc string) TargetHealth {
		return TargetHealth{Target: t, HealthCheckPort: tg.hc.probePort(t.Port), State: state, Reason: reason, Description: desc}
	}
	var out []TargetHealth
	if len(targets) == 0 {
		for _, r := range tg.targets {
			out = append(out, entry(r.target, r.state, r.reason, r.desc))
		}
		// AWS promises no order; a stable one makes output diffable.
		slices.SortFunc(out, func(a, b TargetHealth) int { return compareTargets(a.Target, b.Target) })
		return out, nil
	}
	resolved, err := e.resolveTargets(tg, targets, false)
	if err != nil {
		return nil, err
	}
	for _, t := range resolved {
		if r := tg.targets[t]; r != nil {
			out = append(out, entry(t, r.state, r.reason, r.desc))
			continue
		}
		out = append(out, entry(t, StateUnused, ReasonNotRegistered, descriptions[ReasonNotRegistered]))
	}
	return out, nil
}

func compareTargets(a, b Target) int {
	ai, _ := netip.ParseAddr(a.ID)
	bi, _ := netip.ParseAddr(b.ID)
	return cmp.Or(ai.Compare(bi), cmp.Compare(a.Port, b.Port))
}

// RoutingTargets is the data plane's current routing set: the targets new
// requests may go to on any node, including deregistered ones still inside
// some node's propagation lag.
func (e *Emulator) RoutingTargets(tgARN string) ([]Target, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(tgARN)
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, routes := range tg.routes {
		out = routeTargets(routes, out)
	}
	return out, nil
}

// WaitTargetState waits until TargetHealth reports the target in state.
func (e *Emulator) WaitTargetState(ctx context.Context, tgARN string, t Target, state string) error {
	var (
		err  error
		last string
	)
	waitErr := e.Wait(ctx, func() bool {
		var th []TargetHealth
		th, err = e.TargetHealth(tgARN, t)
		if err != nil {
			return true
		}
		last = th[0].State
		return last == state
	})
	if err != nil {
		return err
	}
	if waitErr != nil {
		return fmt.Errorf("target %s still %q, want %q: %w", t, last, state, waitErr)
	}
	return nil
}
