package albemu_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// A node that no client connection reaches routes nothing, however late it
// applies a deregistration, so it does not hold back a target's true stop.
func TestTrueStopCountsOnlyNodesClientsReach(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	fastAndSecond := mustLag("samples:0s,1s")
	// Registration at once everywhere; the deregistration at once on node
	// 0 only, the only node a client reaches.
	seed, _ := seedWhere(t, fastAndSecond, 6, func(d []time.Duration) bool {
		return cmp.Equal(d, []time.Duration{0, 0, 0, 0, time.Second, time.Second})
	})
	d := newDataPlane(t, albemu.Options{Lag: &fastAndSecond, Seed: seed}, albemu.TargetGroupSpec{DeregistrationDelay: time.Hour})
	a := startTarget(t, "127.0.1.41")
	d.registerHealthy(t, ctx, a)
	freshGet(t, ctx, d.ln.URL()) // one client connection: node 0's
	if err := d.emu.DeregisterTargets(d.arn, a.Target); err != nil {
		t.Fatal(err)
	}
	var stop albemu.Stop
	if err := d.emu.Wait(ctx, func() bool {
		stop, _ = d.emu.TargetStop(d.arn, a.Target)
		return stop.Complete()
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{true, false, false}, stop.Serving); diff != "" {
		t.Errorf("nodes serving (-want +got):\n%s", diff)
	}
	if got, want := stop.TrueStop(), stop.Nodes[0]; !got.Equal(want) {
		t.Errorf("true stop %v, want node 0's stop %v, not the later %v and %v of nodes no client reaches", got, want, stop.Nodes[1], stop.Nodes[2])
	}
}
