package scenario_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

func TestRollingRestart(t *testing.T) {
	t.Run("baseline", func(t *testing.T) { expectFailures(t, run(t, scenario.Baseline, scenario.RollingRestart)) })
	t.Run("fixed-sleep", func(t *testing.T) {
		res := runSpec(t, scenario.Spec{Protection: scenario.FixedSleep, Action: scenario.RollingRestart, FixedSleep: 3 * time.Second})
		expectTerminations(t, res, 3)
		for _, term := range res.Terminations {
			// A sleep cut short by the grace period would have failed.
			if len(term.Hooks) != 1 || term.Hooks[0].Action != kubelet.ActionSleep || term.Hooks[0].Err != "" || term.Killed {
				t.Errorf("pod %s: termination %+v: want a completed native sleep", term.Name, term)
			}
		}
		t.Logf("a fixed 3s sleep: %d of %d requests failed", res.Summary.Errors, res.Summary.Requests)
	})
	t.Run("albdrain", func(t *testing.T) { expectClean(t, run(t, scenario.Albdrain, scenario.RollingRestart), 3) })
}

// TestQuietReleasesBeforeTheDeregistrationDelay compares the default policy,
// quiet, with deregistered on the same rollout under keep-alive traffic:
// both lose nothing, and every quiet hold is ended by the pod's traffic
// stopping, not by the target leaving the target group. How much shorter
// the holds are is measured by make bench, not asserted here.
func TestQuietReleasesBeforeTheDeregistrationDelay(t *testing.T) {
	quiet := runSpec(t, scenario.Spec{Protection: scenario.Albdrain, Action: scenario.RollingRestart, ReleasePolicy: "quiet"})
	expectClean(t, quiet, 3)
	deregistered := runSpec(t, scenario.Spec{Protection: scenario.Albdrain, Action: scenario.RollingRestart, ReleasePolicy: "deregistered"})
	expectCleanWith(t, deregistered, 3, contract.OutcomeDeregistered)
	q, d := median(quiet.Holds()), median(deregistered.Holds())
	t.Logf("median hold: quiet %s, deregistered %s (deregistration delay %s)", q, d, scenarioDelay)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestScaleDown(t *testing.T) {
	t.Run("baseline", func(t *testing.T) { expectFailures(t, run(t, scenario.Baseline, scenario.ScaleDown)) })
	t.Run("albdrain", func(t *testing.T) { expectClean(t, run(t, scenario.Albdrain, scenario.ScaleDown), 2) })
}

func TestEvictionWithDisruptionBudget(t *testing.T) {
	t.Run("baseline", func(t *testing.T) { expectFailures(t, run(t, scenario.Baseline, scenario.Evict)) })
	t.Run("albdrain", func(t *testing.T) { expectClean(t, run(t, scenario.Albdrain, scenario.Evict), 3) })
}

func TestWatcherRestartMidRollout(t *testing.T) {
	t.Run("baseline", func(t *testing.T) { expectFailures(t, run(t, scenario.Baseline, scenario.WatcherRestart)) })
	t.Run("albdrain", func(t *testing.T) {
		res := run(t, scenario.Albdrain, scenario.WatcherRestart)
		expectClean(t, res, 3)
		if res.TerminatingAtRestart < 1 {
			t.Errorf("no pod was terminating when the watcher restarted")
		}
		// The dropped hold was taken up again by the new manager: one more
		// HoldStarted than there were pods.
		if started := res.Albdrain.Events[contract.ReasonHoldStarted]; started <= len(res.Terminations) {
			t.Errorf("%d HoldStarted events for %d pods: no hold was resumed after the restart", started, len(res.Terminations))
		}
	})
}

func run(t *testing.T, p scenario.Protection, a scenario.Action) *scenario.Result {
	return runSpec(t, scenario.Spec{Protection: p, Action: a})
}

// scenarioDelay is the scenarios' deregistration delay where they set none:
// it bounds each quiet hold (plus the margin), and on a machine loaded to
// a load average of 40 the clients' rates fall, each ALB node shows fewer
// gaps in a hold, and its quiet period grows past the cluster's 4 s.
const scenarioDelay = 8 * time.Second

func runSpec(t *testing.T, spec scenario.Spec) *scenario.Result {
	t.Helper()
	spec.Progress = func(line string) { t.Log(line) }
	if spec.DeregistrationDelay == 0 {
		spec.DeregistrationDelay = scenarioDelay
	}
	res, err := scenario.Run(context.Background(), shared, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests, %d failed %v; %d pods terminated, holds %v; %d ELBv2 calls (%d by the load balancer controller)",
		res.Summary.Requests, res.Summary.Errors, res.Summary.ByStatus, len(res.Terminations), res.Holds(), len(res.Calls), res.LBCCalls())
	return res
}

// expectFailures is the baseline's claim: without protection, pods stop
// while the ALB still routes to them, and clients see errors.
func expectFailures(t *testing.T, res *scenario.Result) {
	t.Helper()
	if len(res.Terminations) == 0 {
		t.Fatal("no pod was terminated")
	}
	if res.Summary.Errors == 0 {
		t.Errorf("no failed request out of %d: the harness did not reproduce the ALB race", res.Summary.Requests)
	}
}

func expectTerminations(t *testing.T, res *scenario.Result, n int) {
	t.Helper()
	if len(res.Terminations) != n {
		t.Fatalf("%d pods terminated, want %d", len(res.Terminations), n)
	}
}

// expectClean is albdrain's claim under its default policy, quiet: no
// failed request, every pod held by the injected helper until it saw no
// load-balancer traffic for its quiet period, within the hold's bound, and
// albdrain's metrics and events saying so.
func expectClean(t *testing.T, res *scenario.Result, terminated int) {
	t.Helper()
	expectCleanWith(t, res, terminated, contract.OutcomeQuiet)
}

// expectCleanWith is expectClean for holds that end with outcome.
func expectCleanWith(t *testing.T, res *scenario.Result, terminated int, outcome contract.Outcome) {
	t.Helper()
	if res.Summary.Errors > 0 {
		for _, r := range res.Requests {
			if r.Failed() {
				t.Logf("failed request at %s: status %d %s", r.Start.Format("15:04:05.000"), r.Status, r.Err)
			}
		}
		t.Errorf("%d of %d requests failed %v", res.Summary.Errors, res.Summary.Requests, res.Summary.ByStatus)
	}
	expectTerminations(t, res, terminated)
	for _, term := range res.Terminations {
		if len(term.Hooks) != 1 || term.Hooks[0].Action != kubelet.ActionExec || term.Hooks[0].Command[0] != contract.HelperPath {
			t.Errorf("pod %s: hooks %+v: want the injected helper", term.Name, term.Hooks)
			continue
		}
		h := term.Hooks[0]
		spec, err := contract.Parse(h.Command[1:])
		if err != nil {
			t.Errorf("pod %s: helper command %q: %v", term.Name, h.Command, err)
			continue
		}
		if h.Err != "" || term.Killed || h.Duration() > spec.MaxHold {
			t.Errorf("pod %s: hold %s (bound %s), error %q, killed %v; helper output:\n%s",
				term.Name, h.Duration(), spec.MaxHold, h.Err, term.Killed, h.Output)
		}
	}
	rec := res.Albdrain
	if rec == nil {
		t.Fatal("albdrain recorded nothing")
	}
	if got := rec.Outcomes[string(outcome)]; got != terminated || len(rec.Outcomes) != 1 || rec.Holds[string(outcome)] < float64(got) {
		t.Errorf("holds ended %v (albdrain_holds_total grew by %v), want %d holds ended %q", rec.Outcomes, rec.Holds, terminated, outcome)
	}
	if rec.Injected < float64(res.Spec.Replicas) {
		t.Errorf("albdrain_webhook_mutations_total{result=injected} grew by %v, want at least %d", rec.Injected, res.Spec.Replicas)
	}
	if rec.Events[contract.ReasonHoldStarted] < terminated || rec.Events[contract.ReasonHoldReleased] != terminated {
		t.Errorf("events %v: want a HoldStarted and a HoldReleased per terminated pod (%d)", rec.Events, terminated)
	}
}

// TestGatewayBackendRollingRestart: the Service is behind an HTTPRoute on
// an ALB Gateway, ip by its TargetGroupConfiguration. The first pods are
// admitted before any TargetGroupBinding exists (the controller makes it
// from the route); they are held through the binding it made, and the
// rollout under traffic has no failed request.
func TestGatewayBackendRollingRestart(t *testing.T) {
	res := runSpec(t, scenario.Spec{Protection: scenario.Albdrain, Action: scenario.RollingRestart, Frontend: scenario.Gateway})
	expectClean(t, res, 3)
	var tgb lbc.TargetGroupBinding
	key := client.ObjectKey{Namespace: res.Namespace, Name: "k8s-" + res.Namespace + "-web-80"}
	if err := shared.Env.Client.Get(context.Background(), key, &tgb); err != nil {
		t.Errorf("the binding the controller makes for the Gateway backend: %v", err)
	}
}
