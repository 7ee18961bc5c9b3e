package albemu

import (
	"context"
	"errors"
	"slices"
)

// errDrainCut is the cause given to requests still running when their
// target's deregistration delay ends.
var errDrainCut = errors.New("deregistration delay ended with the request in flight")

// route is a target as one node's data plane sees it, with that node's
// health verdict. It outlives its registration while deregistration
// propagates. Guarded by Emulator.mu.
type route struct {
	target         Target
	node           int
	applied        bool   // the node has applied the registration
	health         string // StateInitial, StateHealthy or StateUnhealthy
	reason, desc   string // of the latest failing verdict
	okRun, failRun int    // consecutive passing and failing checks
	inflight       map[*exchange]struct{}
	stopProbes     context.CancelFunc // set once probes started
}

func newRoute(t Target, node int) *route {
	return &route{target: t, node: node, health: StateInitial, inflight: map[*exchange]struct{}{}}
}

func (tg *targetGroup) removeRoute(r *route) {
	tg.routes[r.node] = slices.DeleteFunc(tg.routes[r.node], func(x *route) bool { return x == r })
}

// cut ends every request or flow in flight to the target, as the load
// balancer does when the deregistration delay expires.
func (r *route) cut() {
	for x := range r.inflight {
		x.cancel(errDrainCut)
	}
	clear(r.inflight)
}

func (r *route) stopProbing() {
	if r.stopProbes != nil {
		r.stopProbes()
	}
}

// pickLocked chooses node n's route for a new request: round robin over
// healthy targets, or over the unhealthy ones when none is healthy (ALB
// fails open). Targets still in their initial checks get no traffic. Nil
// means there is nowhere to send the request.
func (tg *targetGroup) pickLocked(n int) *route {
	var healthy, unhealthy []*route
	for _, r := range tg.routes[n] {
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
	r := pool[tg.next[n]%len(pool)]
	tg.next[n]++
	return r
}

// exchange is one proxied request's or flow's hold on its route, so
// draining can cut it.
type exchange struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}
