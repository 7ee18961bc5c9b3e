package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// runCustom runs a scripted scenario, logs what it saw and checks what every
// run must show whatever the fault: albdrain called ELBv2 only for actions
// its IAM policy grants.
func runCustom(t *testing.T, spec scenario.Custom) *scenario.Result {
	t.Helper()
	t.Cleanup(shared.Emulator.ClearFaults)
	spec.Progress = func(line string) { t.Log(line) }
	res, err := scenario.RunCustom(context.Background(), shared, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests, %d failed %v; %d pods terminated, holds %v; %d ELBv2 calls (%d by the load balancer controller)",
		res.Summary.Requests, res.Summary.Errors, res.Summary.ByStatus, len(res.Terminations), res.Holds(), len(res.Calls), res.LBCCalls())
	if res.Albdrain != nil {
		t.Logf("holds ended %v (albdrain_holds_total grew by %v); events %v", res.Albdrain.Outcomes, res.Albdrain.Holds, res.Albdrain.Events)
	}
	checkIAM(t, res)
	return res
}

// checkIAM checks the emulator's call log over the run: every call that
// was not the load balancer controller's is albdrain's, and its action is
// one the IAM policy document grants (early deregistration is off here).
func checkIAM(t *testing.T, res *scenario.Result) {
	t.Helper()
	allowed := policyActions(t, "../../iam/albdrain.json")
	seen := map[string]int{}
	for _, c := range res.Calls {
		if cluster.IsLBCCall(c) {
			continue
		}
		if c.Action == "" && c.ErrorCode == albemu.CodeValidationError {
			// A body cut short (the hold ended while a retry was being
			// sent) names no action; AWS refuses it before any IAM check.
			continue
		}
		if !strings.Contains(c.UserAgent, "app/"+cluster.AlbdrainAppID) {
			t.Errorf("ELBv2 call %s from an unknown client %q", c.Action, c.UserAgent)
			continue
		}
		seen[c.Action]++
		if !slices.Contains(allowed, c.Action) {
			t.Errorf("albdrain called %s, which iam/albdrain.json does not grant", c.Action)
		}
	}
	t.Logf("albdrain's ELBv2 calls by action: %v (policy grants %v)", seen, allowed)
}

// policyActions reads the ELBv2 actions an IAM policy document allows.
func policyActions(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Effect string
			Action any
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, s := range doc.Statement {
		var list []any
		switch a := s.Action.(type) {
		case string:
			list = []any{a}
		case []any:
			list = a
		}
		for _, a := range list {
			if op, ok := strings.CutPrefix(fmt.Sprint(a), "elasticloadbalancing:"); ok && s.Effect == "Allow" {
				out = append(out, op)
			}
		}
	}
	return out
}

// checkBounded checks what albdrain promises under every fault: each pod
// terminated ran the injected helper as its preStop, to completion and
// within the hold's bound (the helper's max-hold), and was not cut off by
// its grace period. It returns each pod's hook.
func checkBounded(t *testing.T, res *scenario.Result, terminated int) []kubelet.HookRun {
	t.Helper()
	if len(res.Terminations) != terminated {
		t.Errorf("%d pods terminated, want %d", len(res.Terminations), terminated)
	}
	var hooks []kubelet.HookRun
	for _, term := range res.Terminations {
		if term.Killed {
			t.Errorf("pod %s was killed at the end of its grace period %s", term.Name, term.Grace)
		}
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
		if h.Err != "" || h.Duration() > spec.MaxHold {
			t.Errorf("pod %s: hold %s (bound %s), error %q; helper output:\n%s", term.Name, h.Duration(), spec.MaxHold, h.Err, h.Output)
		}
		hooks = append(hooks, h)
	}
	return hooks
}

// checkOutcomes checks that the watcher ended each hold once, with one of
// the allowed outcomes, by the run's own end events, that its other events
// agree, and that it counted each in its metrics. The counter is the
// process's: a late end report of another test's pod can only add to it.
func checkOutcomes(t *testing.T, res *scenario.Result, allowed ...contract.Outcome) {
	t.Helper()
	rec := res.Albdrain
	total := 0
	for o, n := range rec.Outcomes {
		total += n
		if !slices.Contains(allowed, contract.Outcome(o)) {
			t.Errorf("%d holds ended %s; allowed outcomes are %v", n, o, allowed)
		}
		if rec.Holds[o] < float64(n) {
			t.Errorf("albdrain_holds_total{outcome=%q} grew by %v for %d such holds", o, rec.Holds[o], n)
		}
	}
	if total != len(res.Terminations) {
		t.Errorf("%d end events (%v) for %d pods terminated", total, rec.Outcomes, len(res.Terminations))
	}
	released := rec.Outcomes[string(contract.OutcomeQuiet)] + rec.Outcomes[string(contract.OutcomeDeregistered)] + rec.Outcomes[string(contract.OutcomeNotRegistered)] + rec.Outcomes[string(contract.OutcomeDrainingSettled)]
	for reason, want := range map[string]int{
		contract.ReasonHoldReleased: released,
		contract.ReasonHoldBounded:  rec.Outcomes[string(contract.OutcomeBound)],
		contract.ReasonHoldTimedOut: rec.Outcomes[string(contract.OutcomeTimeout)],
		contract.ReasonHoldFellBack: rec.Outcomes[string(contract.OutcomeFallback)],
	} {
		if rec.Events[reason] != want {
			t.Errorf("%d %s events, but the end events count %d such holds (%v)", rec.Events[reason], reason, want, rec.Outcomes)
		}
	}
	if rec.Events[contract.ReasonHoldStarted] < len(res.Terminations) {
		t.Errorf("%d HoldStarted events for %d pods", rec.Events[contract.ReasonHoldStarted], len(res.Terminations))
	}
}

// checkNoFailures is the design's claim where nothing forces a fallback.
func checkNoFailures(t *testing.T, res *scenario.Result) {
	t.Helper()
	if res.Summary.Errors == 0 {
		return
	}
	for _, r := range res.Requests {
		if r.Failed() {
			t.Logf("failed request at %s: status %d %s", r.Start.Format("15:04:05.000"), r.Status, r.Err)
		}
	}
	t.Errorf("%d of %d requests failed %v", res.Summary.Errors, res.Summary.Requests, res.Summary.ByStatus)
}

// elbv2Attempts reads albdrain's counters of DescribeTargetHealth attempts
// by result, from the collectors its managers in this process share.
func elbv2Attempts() map[string]float64 {
	m := app.InProcess().Metrics.Watcher
	out := map[string]float64{}
	for _, r := range []string{metrics.ResultSuccess, metrics.ResultThrottled, metrics.ResultError} {
		out[r] = testutil.ToFloat64(m.ELBv2Requests.WithLabelValues("DescribeTargetHealth", r))
	}
	return out
}

func delta(after, before map[string]float64) map[string]float64 {
	out := maps.Clone(after)
	for k, v := range before {
		out[k] -= v
	}
	return out
}
