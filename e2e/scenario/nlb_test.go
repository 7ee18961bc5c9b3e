package scenario_test

import (
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// Behind a Network Load Balancer a draining target keeps its established
// flows, and only new flows stop, after each node's lag. The quiet policy
// therefore waits for no new flow rather than for silence: it loses no
// request and releases every pod while its target still drains, where the
// deregistered policy holds each pod until the delay has ended.
func TestNLBRollingRestart(t *testing.T) {
	const delay = 12 * time.Second
	for _, tc := range []struct {
		policy  string
		outcome contract.Outcome
		// beforeDelay is whether holds end before the target stops draining.
		beforeDelay bool
	}{
		{"quiet", contract.OutcomeQuiet, true},
		{"deregistered", contract.OutcomeDeregistered, false},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			res := runSpec(t, scenario.Spec{
				Protection: scenario.Albdrain, Action: scenario.RollingRestart, Frontend: scenario.NLB,
				ReleasePolicy: tc.policy, DeregistrationDelay: delay,
			})
			expectCleanWith(t, res, 3, tc.outcome)
			for _, term := range res.Terminations {
				stop, ok := res.Stops[term.Name]
				if !ok || !stop.Complete() || len(term.Hooks) != 1 {
					t.Errorf("pod %s: no complete ground truth or no hold", term.Name)
					continue
				}
				end, drained := term.Hooks[0].End, stop.Deregistered.Add(delay)
				if end.Before(stop.TrueStop()) {
					t.Errorf("pod %s released %s before the last node stopped sending it new flows", term.Name, stop.TrueStop().Sub(end))
				}
				if end.Before(drained) != tc.beforeDelay {
					t.Errorf("pod %s released %s after its target stopped draining; want before: %v", term.Name, end.Sub(drained), tc.beforeDelay)
				}
			}
		})
	}
}
