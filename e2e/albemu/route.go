package albemu

import (
	"context"
	"errors"
	"slices"
)

// errDrainCut is the cause given to requests still running when their
// target's deregistration delay ends.
var errDrainCut = errors.New("deregistration delay ended with the request in flight")

// route is a target as the data plane sees it. It outlives its
// registration while deregistration propagates. Guarded by Emulator.mu.
type route struct {
	target   Target
	health   string // StateInitial, StateHealthy or StateUnhealthy
	inflight map[*exchange]struct{}
}

func newRoute(t Target) *route {
	return &route{target: t, inflight: map[*exchange]struct{}{}}
}

func (tg *targetGroup) removeRoute(r *route) {
	tg.routes = slices.DeleteFunc(tg.routes, func(x *route) bool { return x == r })
}

// cut ends every request in flight to the target, as the ALB does when the
// deregistration delay expires.
func (r *route) cut() {
	for x := range r.inflight {
		x.cancel(errDrainCut)
	}
	clear(r.inflight)
}

// pickLocked chooses the route for a new request: round robin over healthy
// targets, or over the unhealthy ones when none is healthy (ALB fails
// open). Targets still in their initial checks get no traffic. Nil means
// there is nowhere to send the request.
func (tg *targetGroup) pickLocked() *route {
	var healthy, unhealthy []*route
	for _, r := range tg.routes {
		switch r.health {
		case StateHealthy:
			healthy = append(healthy, r)
		case StateUnhealthy:
			unhealthy = append(unhealthy, r)
		}
	}
	pool := healthy
	if len(pool) == 0 {
		pool = unhealthy
	}
	if len(pool) == 0 {
		return nil
	}
	r := pool[tg.next%len(pool)]
	tg.next++
	return r
}

// exchange is one proxied request's hold on its route, so draining can cut
// it.
type exchange struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}
