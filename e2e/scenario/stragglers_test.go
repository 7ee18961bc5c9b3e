package scenario_test

import (
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// stragglerLag is issue 21's model: most nodes apply a change within 1-3 s,
// one draw in five four times later.
const stragglerLag = "straggler:min=1s,max=3s,slow=0.2,by=4"

// With straggling ALB nodes, quiet holds every pod until the last node
// clients reach has stopped routing to it: each node's silence is judged by
// that node's own rate, so a straggler sending its share of the traffic
// alone is not mistaken for a stopped load balancer.
func TestQuietWaitsForStragglingNodes(t *testing.T) {
	lag, err := albemu.ParseLag(stragglerLag)
	if err != nil {
		t.Fatal(err)
	}
	shared.Emulator.SetLag(lag, 21)
	t.Cleanup(func() { shared.Emulator.SetLag(cluster.DefaultTimings().LagModel(), 0) })
	// The delay outlasts the slowest draw, 12 s, as AWS advises.
	res := runSpec(t, scenario.Spec{
		Protection: scenario.Albdrain, Action: scenario.RollingRestart, Replicas: 4,
		Rate: 40, Poisson: true, DeregistrationDelay: 20 * time.Second,
	})
	expectClean(t, res, 4)
	for _, term := range res.Terminations {
		stop, ok := res.Stops[term.Name]
		if !ok || !stop.Complete() || len(term.Hooks) != 1 {
			t.Errorf("pod %s: no complete ground truth %+v or no hold", term.Name, stop)
			continue
		}
		if end := term.Hooks[0].End; end.Before(stop.TrueStop()) {
			t.Errorf("pod %s released %s before the last ALB node stopped routing to it (lags %v)", term.Name, stop.TrueStop().Sub(end), stop.Lags)
		}
	}
}

// Requests that take seconds are still being answered when pods stop; the
// health checks, which ask for no serve time, stay fast.
func TestSlowRequestsInFlightWhenPodsStop(t *testing.T) {
	serve, err := albemu.ParseLag("lognormal:median=50ms,p99=2s,max=3s")
	if err != nil {
		t.Fatal(err)
	}
	res := runSpec(t, scenario.Spec{Protection: scenario.Albdrain, Action: scenario.RollingRestart, Poisson: true, ServeTime: serve})
	// The clients wait for their slow answers, so each pod gets only a few
	// requests a second, and its holds may end at their bound as well as on
	// quiet: what counts here is that none is lost.
	if res.Summary.Errors > 0 {
		t.Errorf("%d of %d requests failed %v", res.Summary.Errors, res.Summary.Requests, res.Summary.ByStatus)
	}
	expectTerminations(t, res, 3)
	if ended := res.Albdrain.Events[contract.ReasonHoldReleased] + res.Albdrain.Events[contract.ReasonHoldBounded]; ended != 3 {
		t.Errorf("events %v: want each of 3 holds released or bounded", res.Albdrain.Events)
	}
	slow := 0
	for _, r := range res.Requests {
		if r.Duration > time.Second {
			slow++
		}
	}
	if slow == 0 {
		t.Errorf("no request of %d took over a second: the serve times were not applied", len(res.Requests))
	}
}
