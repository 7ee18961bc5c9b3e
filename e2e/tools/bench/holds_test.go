package bench

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

func TestFixedSleep(t *testing.T) {
	stops := []float64{1.2, 2.5, 3.1, 7.9}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 3 * time.Second}, {0.9, 8 * time.Second}, {0.99, 8 * time.Second}} {
		if got := fixedSleep(stops, tc.q); got != tc.want {
			t.Errorf("fixedSleep(p%g) = %s, want %s", 100*tc.q, got, tc.want)
		}
	}
	if got := fixedSleep([]float64{0.2}, 0.5); got != time.Second {
		t.Errorf("a sub-second stop gives %s, want the native sleep's minimum of 1s", got)
	}
}

func TestPodHoldOf(t *testing.T) {
	t0 := time.Now()
	target := albemu.Target{ID: "127.0.0.9", Port: 8080}
	res := &scenario.Result{
		Stops: map[string]albemu.Stop{"web-1": {Target: target, Nodes: []time.Time{t0.Add(2 * time.Second), t0.Add(5 * time.Second)}}},
		// Two of the target's requests fall in the 5s before its hold.
		Routed: []albemu.RequestRecord{
			{Target: target.String(), Status: 200, Time: t0.Add(-time.Second)},
			{Target: target.String(), Status: 502, Time: t0.Add(-2 * time.Second)},
			{Target: target.String(), Status: 460, Time: t0.Add(-6 * time.Second)},
			{Target: target.String(), Status: 200, Err: "response cut mid-body", Time: t0.Add(time.Second)},
			{Target: "127.0.0.8:8080", Status: 502, Time: t0.Add(-time.Second)},
		},
	}
	term := kubelet.Termination{Name: "web-1", IP: target.ID, Noticed: t0.Add(-time.Second),
		Hooks: []kubelet.HookRun{{Action: kubelet.ActionSleep, Start: t0, End: t0.Add(3 * time.Second)}}}
	got, err := podHoldOf(term, res, scenario.FixedSleep)
	if err != nil {
		t.Fatal(err)
	}
	want := podHold{name: "web-1", hold: 3 * time.Second, trueStop: 5 * time.Second, failed: 2, rate: 2.0 / 5}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(podHold{})); diff != "" {
		t.Errorf("podHoldOf (-want +got):\n%s", diff)
	}
	if got.overHold() != -2*time.Second {
		t.Errorf("over-hold %s, want -2s: released 2s before the true stop", got.overHold())
	}
	if _, err := podHoldOf(term, res, scenario.Albdrain); err == nil {
		t.Error("a sleep hook passed for albdrain's helper")
	}
	res.Stops["web-1"] = albemu.Stop{Target: target, Nodes: []time.Time{t0, {}}}
	if _, err := podHoldOf(term, res, scenario.FixedSleep); err == nil {
		t.Error("a pod still routed by a node was measured")
	}
}

func TestHoldSectionKeys(t *testing.T) {
	pods := func(holds ...float64) []podHold {
		var out []podHold
		for i, h := range holds {
			out = append(out, podHold{name: "p", hold: time.Duration(h * float64(time.Second)), trueStop: time.Duration(i+2) * time.Second})
		}
		return out
	}
	quietPods := pods(4, 5) // true stops 2 s and 3 s
	for i := range quietPods {
		quietPods[i].rate, quietPods[i].quietPeriod = 40, 1500*time.Millisecond
	}
	runs := []*run{
		{policy: "baseline", pods: pods(0, 0), requests: 100, failed: 9},
		{policy: "quiet", pods: quietPods, requests: 100, released: 2},
		{policy: "deregistered", pods: pods(20, 21), requests: 100, released: 2},
		{policy: "fixed_p90", seed: 7, pods: pods(3, 3), requests: 100, failed: 4},
	}
	s := holdSection(cluster.FieldTimings(), HoldOptions{Replicas: 2, Rollouts: 1, Rate: 40, Policies: HoldPolicies(time.Second, time.Second, 30*time.Second)},
		runs, []float64{2, 3, 2, 3, 2, 3}, map[string]float64{"fixed_p90": 3})
	got := map[string]float64{}
	for _, f := range s.Figures {
		got[f.Key] = f.Value
	}
	for key, want := range map[string]float64{
		"holds.min_safe_fixed_sleep_s":         3,
		"holds.fixed_p90.sleep_s":              3,
		"holds.baseline.errors":                9,
		"holds.deregistered.errors":            0,
		"holds.deregistered.hold_median_s":     20,
		"holds.deregistered.ratio_vs_min_safe": 20.0 / 3,
		"holds.deregistered.ratio_floor":       2.0 / 3, // the nearest-rank median true stop
		// Released 2 s after the true stop, with a quiet period of 1.5 s
		// sized where the true rate sizes the minimum, 1 s.
		"holds.quiet.over_hold_beyond_own_quiet_p99_s": 0.5,
		"holds.quiet.over_hold_excess_p99_s":           0,
		"holds.quiet.quiet_period_vs_true_rate_p50":    1.5,
		"holds.deregistered.over_hold_p99_s":           18,
		"holds.deregistered.released_by_policy":        2,
		"holds.fixed_p90.errors":                       4,
		"holds.fixed_p90.over_hold_min_s":              0,
		"holds.fixed_p90.pods":                         2,
		"holds.fixed_p90.rollouts_with_errors":         1,
		"holds.fixed_p90.max_errors_in_a_rollout":      4,
		"holds.quiet.rollouts_with_errors":             0,
	} {
		if v, ok := got[key]; !ok || v != round(want) {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, round(want))
		}
	}
	if len(s.Details) != 4*2+8 {
		t.Errorf("details %q: want a line per rollout, a heading and a line per pod for each of 4 policies", s.Details)
	}
	if !slices.Contains(s.Details, "fixed_p90 failed requests per rollout (seed: failed/requests): 7:4/100") {
		t.Errorf("details %q: no line of fixed_p90's rollouts", s.Details)
	}
}

// The quiet policy's over-hold target follows the quiet period the traffic
// sizes: k mean gaps, within its bounds, plus a second.
func TestQuietOverHoldBound(t *testing.T) {
	quiet := HoldPolicies(time.Second, time.Second, 30*time.Second)[0]
	if quiet.Name != "quiet" {
		t.Fatalf("first policy %q, want quiet", quiet.Name)
	}
	for _, tc := range []struct {
		rate float64
		want time.Duration
	}{{40, 2 * time.Second}, {2, 8500 * time.Millisecond}, {0.1, 31 * time.Second}} {
		if got := quiet.MaxOverHold(tc.rate); got != tc.want {
			t.Errorf("bound at %g requests/s = %s, want %s", tc.rate, got, tc.want)
		}
	}
}

func TestSelectPolicies(t *testing.T) {
	all := HoldPolicies(time.Second, time.Second, 30*time.Second)
	names := func(ps []HoldPolicy) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	for _, tt := range []struct {
		names, want []string
	}{
		{nil, names(all)},
		{[]string{"fixed_p90", "quiet"}, []string{"quiet", "fixed_p90"}},
	} {
		got, err := SelectPolicies(all, tt.names)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tt.want, names(got)); d != "" {
			t.Errorf("SelectPolicies(%q) (-want +got):\n%s", tt.names, d)
		}
	}
	if _, err := SelectPolicies(all, []string{"quiet", "qiuet"}); err == nil {
		t.Error("an unknown policy name was accepted")
	}
}

// The per-pod lines show how the helper's hold ended, read from its log.
func TestHelperEndFromItsLog(t *testing.T) {
	var out strings.Builder
	slog.New(slog.NewTextHandler(&out, nil)).Info("hold ended", "outcome", contract.OutcomeBound, "quiet", false,
		"quietPeriod", 7500*time.Millisecond, "signal", contract.SignalSockDiag, "after", 23*time.Second,
		"sources", "10.0.1.1: 4 gaps in 1.2s, silent 2s of 4.5s")
	m := helperEnd.FindStringSubmatch("watcher answered\n" + out.String())
	if m == nil {
		t.Fatalf("no hold end in %q", out.String())
	}
	if d := cmp.Diff([]string{string(contract.OutcomeBound), "7.5s"}, m[1:]); d != "" {
		t.Errorf("outcome and quiet period (-want +got):\n%s", d)
	}
	src := helperSources.FindStringSubmatch(out.String())
	if src == nil {
		t.Fatalf("no sources in %q", out.String())
	}
	if d := cmp.Diff([]string{"10.0.1.1: 4 gaps in 1.2s, silent 2s of 4.5s"}, src[1:]); d != "" {
		t.Errorf("sources (-want +got):\n%s", d)
	}
}

// The quiet policy's over-hold target is each pod's own: a pod that got
// fewer requests than the run's nominal rate is allowed the longer quiet
// period its traffic sizes.
func TestQuietOverHoldTargetPerPod(t *testing.T) {
	quiet := HoldPolicies(time.Second, time.Second, 30*time.Second)[0]
	for _, tc := range []struct {
		rate float64
		met  bool
	}{{2, false}, {1.5, true}} {
		// Over-hold 9s: beyond 15/2 + 1 = 8.5s, within 15/1.5 + 1 = 11s.
		pods := []podHold{{hold: 10 * time.Second, trueStop: time.Second, rate: tc.rate}, {hold: 2 * time.Second, trueStop: time.Second, rate: 40}}
		s := &Section{Name: "holds"}
		policyFigures(s, "quiet_low_rate", quiet, 2, pods, 10, 100, 0)
		c := s.Comparisons[len(s.Comparisons)-1]
		if !strings.Contains(c.What, "over-hold") || c.Met != tc.met {
			t.Errorf("at %g requests/s: %+v, want met %v", tc.rate, c, tc.met)
		}
	}
}
