package bench

import (
	"context"
	"sync"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// routeExits records when each target left the ALB data plane's routing
// set: the moment the emulated ALB stopped sending it new requests, which
// is the deregistration plus the propagation lag. Pod IPs are never reused
// within a cluster's life, so a target names one pod.
type routeExits struct {
	mu    sync.Mutex
	exits map[albemu.Target]time.Time
	stop  func()
}

// watchRoutes re-reads the routing sets on every change of the emulator's
// state until stop is called.
func watchRoutes(e *albemu.Emulator) *routeExits {
	ctx, cancel := context.WithCancel(context.Background())
	r := &routeExits{exits: map[albemu.Target]time.Time{}}
	done := make(chan struct{})
	prev := map[albemu.Target]bool{}
	go func() {
		defer close(done)
		// Wait returns only when ctx ends: the condition never holds.
		_ = e.Wait(ctx, func() bool {
			now := time.Now()
			cur := map[albemu.Target]bool{}
			for _, set := range e.RoutingSets() {
				for _, t := range set {
					cur[t] = true
				}
			}
			r.mu.Lock()
			for t := range prev {
				if _, seen := r.exits[t]; !cur[t] && !seen {
					r.exits[t] = now
				}
			}
			r.mu.Unlock()
			prev = cur
			return false
		})
	}()
	r.stop = func() {
		cancel()
		<-done
	}
	return r
}

// exit is when t left the routing set; false if it has not (yet).
func (r *routeExits) exit(t albemu.Target) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.exits[t]
	return at, ok
}
