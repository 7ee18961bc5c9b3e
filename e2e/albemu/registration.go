package albemu

import (
	"context"
	"fmt"
	"time"
)

// registration is a target as the control plane sees it, from
// RegisterTargets until its deregistration delay ends, with its route on
// every node.
type registration struct {
	target              Target
	state, reason, desc string
	routes              []*route // one per node
}

func (r *registration) draining() bool { return r.state == StateDraining }

// refresh derives the state DescribeTargetHealth reports from the nodes'
// verdicts. The report changes once every node agrees: healthy when all
// nodes have the target and find it healthy, unhealthy when all find it
// unhealthy; in between it keeps its last value. So a target reported
// healthy is routed to by every node, and one reported unhealthy by none
// (unless all fail open). A draining target stays draining whatever its
// checks say.
func (r *registration) refresh() {
	if r.draining() {
		return
	}
	applied, healthy, unhealthy := 0, 0, 0
	var failing *route
	for _, rt := range r.routes {
		if !rt.applied {
			continue
		}
		applied++
		switch rt.health {
		case StateHealthy:
			healthy++
		case StateUnhealthy:
			unhealthy++
			failing = rt
		}
	}
	switch {
	case applied == 0:
		r.state, r.reason, r.desc = StateInitial, ReasonRegistrationInProgress, descriptions[ReasonRegistrationInProgress]
	case healthy == len(r.routes):
		r.state, r.reason, r.desc = StateHealthy, "", ""
	case unhealthy == len(r.routes) || (r.state == StateUnhealthy && failing != nil):
		r.state, r.reason, r.desc = StateUnhealthy, failing.reason, failing.desc
	case r.state == StateInitial:
		r.state, r.reason, r.desc = StateInitial, ReasonInitialHealthChecking, descriptions[ReasonInitialHealthChecking]
	}
}

func (e *Emulator) registerLocked(tg *targetGroup, targets []Target) *APIError {
	resolved, err := e.resolveTargets(tg, targets, true)
	if err != nil {
		return err
	}
	active := 0
	for _, r := range tg.targets {
		if !r.draining() {
			active++
		}
	}
	added := map[Target]bool{}
	for _, t := range resolved {
		if r := tg.targets[t]; (r == nil || r.draining()) && !added[t] {
			added[t] = true
			active++
		}
	}
	if active > e.opts.MaxTargetsPerGroup {
		return &APIError{Code: CodeTooManyTargets, Message: fmt.Sprintf("You've reached the limit on the number of targets registered to a target group (%d)", e.opts.MaxTargetsPerGroup)}
	}
	for _, t := range resolved {
		if r := tg.targets[t]; r != nil && !r.draining() {
			continue // already registered: a no-op, as in AWS
		}
		// A draining target registered again starts over; its old routes
		// keep draining on their own timers.
		reg := &registration{target: t}
		reg.refresh()
		tg.targets[t] = reg
		for i, lag := range e.drawLagsLocked() {
			rt := newRoute(t, i)
			reg.routes = append(reg.routes, rt)
			e.afterLocked(lag, func() { e.applyRegistrationLocked(tg, reg, rt) })
		}
	}
	e.notifyLocked()
	return nil
}

// applyRegistrationLocked is the moment one node learns of a new target: it
// joins that node's routing set and the node's health checks begin.
func (e *Emulator) applyRegistrationLocked(tg *targetGroup, reg *registration, rt *route) {
	if reg.draining() || tg.targets[reg.target] != reg {
		return // deregistered before it reached this node
	}
	tg.routes[rt.node] = append(tg.routes[rt.node], rt)
	rt.applied = true
	reg.refresh()
	ctx, cancel := context.WithCancel(e.ctx)
	rt.stopProbes = cancel
	e.goLocked(func() { e.probeLoop(ctx, tg, reg, rt) })
}

func (e *Emulator) deregisterLocked(tg *targetGroup, targets []Target) *APIError {
	resolved, err := e.resolveTargets(tg, targets, false)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, t := range resolved {
		reg := tg.targets[t]
		if reg == nil || reg.draining() {
			continue
		}
		// The routes keep their last health verdicts: until each node's lag
		// passes, it routes to the target exactly as before.
		reg.state, reg.reason, reg.desc = StateDraining, ReasonDeregistrationInProgress, descriptions[ReasonDeregistrationInProgress]
		stop := &Stop{TargetGroupArn: tg.arn, Target: t, Deregistered: now, Lags: e.drawLagsLocked(), Nodes: make([]time.Time, len(reg.routes))}
		e.stops = appendCapped(e.stops, stop)
		for i, rt := range reg.routes {
			if !e.opts.HealthCheckDraining {
				rt.stopProbing()
			}
			e.afterLocked(stop.Lags[i], func() {
				tg.removeRoute(rt)
				stop.Nodes[i] = time.Now()
			})
		}
		terminate := tg.terminatesFlows()
		e.afterLocked(tg.delay, func() {
			if tg.targets[t] == reg {
				delete(tg.targets, t)
			}
			for _, rt := range reg.routes {
				rt.stopProbing()
				if terminate {
					rt.cut()
				}
			}
		})
	}
	e.notifyLocked()
	return nil
}

// SetPropagationLag makes the propagation lag of later registrations and
// deregistrations d on every node.
func (e *Emulator) SetPropagationLag(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lag = ConstantLag(d)
}

// SetHealthCheckDraining says whether targets deregistered from now on are
// still health-checked while they drain (Options.HealthCheckDraining).
func (e *Emulator) SetHealthCheckDraining(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opts.HealthCheckDraining = on
}

// SetLag draws the lags of later registrations and deregistrations from m,
// starting afresh from seed.
func (e *Emulator) SetLag(m LagModel, seed uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lag, e.lagRand = m, newLagRand(seed)
}

// drawLagsLocked draws one lag per node. Callers hold e.mu.
func (e *Emulator) drawLagsLocked() []time.Duration {
	out := make([]time.Duration, len(e.nodes))
	for i := range out {
		out[i] = e.lag.Draw(e.lagRand)
	}
	return out
}
