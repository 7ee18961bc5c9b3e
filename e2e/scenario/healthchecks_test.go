package scenario_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/scenario"
)

// AWS does not say whether an ALB keeps health-checking a target while it
// drains. Either way the quiet policy loses no request, and every hold ends
// on quiet long before the target stops draining: the checks, new
// connections from the ALB's nodes to the served port, are not mistaken
// for traffic, which would hold each pod until its target group stopped
// checking it at the delay's end.
func TestQuietWhetherDrainingTargetsAreHealthChecked(t *testing.T) {
	// Long beside a quiet hold (the controller's reaction, the lag and a
	// quiet period: a few seconds), so a hold kept by the checks shows.
	const delay = 12 * time.Second
	for _, checked := range []bool{false, true} {
		t.Run(fmt.Sprintf("checked=%v", checked), func(t *testing.T) {
			shared.Emulator.SetHealthCheckDraining(checked)
			t.Cleanup(func() { shared.Emulator.SetHealthCheckDraining(cluster.DefaultTimings().HealthCheckDraining) })
			res := runSpec(t, scenario.Spec{Protection: scenario.Albdrain, Action: scenario.RollingRestart, DeregistrationDelay: delay})
			expectClean(t, res, 3)
			for _, term := range res.Terminations {
				stop, ok := res.Stops[term.Name]
				if !ok || len(term.Hooks) != 1 {
					t.Errorf("pod %s: no ground truth or no hold", term.Name)
					continue
				}
				if end := term.Hooks[0].End; !end.Before(stop.Deregistered.Add(delay)) {
					t.Errorf("pod %s released %s after its target stopped draining: held until the checks stopped",
						term.Name, end.Sub(stop.Deregistered.Add(delay)))
				}
			}
		})
	}
}
