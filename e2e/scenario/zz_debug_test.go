package scenario_test

import (
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/scenario"
)

func TestZZDebugNLB(t *testing.T) {
	res := runSpec(t, scenario.Spec{Protection: scenario.Albdrain, Action: scenario.RollingRestart, Frontend: scenario.NLB, ReleasePolicy: "quiet", DeregistrationDelay: 12 * time.Second})
	for _, term := range res.Terminations {
		if len(term.Hooks) > 0 {
			t.Logf("%s: %s", term.Name, term.Hooks[0].Output)
		}
	}
}

func TestZZDebugALB(t *testing.T) {
	res := runSpec(t, scenario.Spec{Protection: scenario.Albdrain, Action: scenario.RollingRestart})
	for _, term := range res.Terminations {
		if len(term.Hooks) > 0 {
			t.Logf("%s: %s", term.Name, term.Hooks[0].Output)
		}
	}
}
