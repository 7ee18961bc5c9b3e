package scenario_test

import (
	"math"
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/scenario"
)

// variableLag is heavy-tailed: the slowest of three nodes often lags well
// beyond its median.
const variableLag = "lognormal:median=1s,p99=8s,max=10s"

// Under lags that vary per node and per pod, a fixed sleep at the median
// lag lets some pods stop while an ALB node still routes to them, and
// albdrain holds every pod until the last node has stopped.
func TestRollingRestartUnderVariableLags(t *testing.T) {
	lag, err := albemu.ParseLag(variableLag)
	if err != nil {
		t.Fatal(err)
	}
	timings := cluster.DefaultTimings()
	shared.Emulator.SetLag(lag, 3)
	t.Cleanup(func() { shared.Emulator.SetLag(timings.LagModel(), 0) })
	// The delay outlasts the longest lag, as AWS advises, by more than the
	// quiet period of a straggler sending its share of the traffic alone,
	// so every hold ends on quiet rather than at its bound.
	const delay = 20 * time.Second
	// The median of what a pod waits for: the controller's reaction and the
	// slowest of three nodes, in the whole seconds a native sleep counts.
	median := (timings.LBCMinLag+timings.LBCMaxLag)/2 + lag.QuantileOfMax(0.5, 3)
	sleep := time.Duration(math.Ceil(median.Seconds())) * time.Second

	t.Run("baseline", func(t *testing.T) {
		expectFailures(t, runSpec(t, scenario.Spec{Protection: scenario.Baseline, Action: scenario.RollingRestart, DeregistrationDelay: delay}))
	})
	t.Run("fixed-sleep-at-median", func(t *testing.T) {
		res := runSpec(t, scenario.Spec{
			Protection: scenario.FixedSleep, Action: scenario.RollingRestart, Replicas: 6,
			FixedSleep: sleep, DeregistrationDelay: delay,
		})
		expectFailures(t, res)
		early := 0
		for _, term := range res.Terminations {
			if stop, ok := res.Stops[term.Name]; ok && len(term.Hooks) == 1 && term.Hooks[0].End.Before(stop.TrueStop()) {
				early++
			}
		}
		if early == 0 {
			t.Errorf("no pod's %s sleep ended before its true stop, yet requests failed", sleep)
		}
		t.Logf("a fixed %s sleep (the median wait): %d of %d pods stopped while still routed", sleep, early, len(res.Terminations))
	})
	t.Run("albdrain", func(t *testing.T) {
		res := runSpec(t, scenario.Spec{Protection: scenario.Albdrain, Action: scenario.RollingRestart, Replicas: 6, DeregistrationDelay: delay})
		expectClean(t, res, 6)
		for _, term := range res.Terminations {
			stop, ok := res.Stops[term.Name]
			if !ok || !stop.Complete() {
				t.Errorf("pod %s: no complete ground truth %+v", term.Name, stop)
				continue
			}
			if h := term.Hooks[0]; h.End.Before(stop.TrueStop()) {
				t.Errorf("pod %s released %s before the last ALB node stopped routing to it (lags %v)",
					term.Name, stop.TrueStop().Sub(h.End), stop.Lags)
			}
		}
	})
}
