package bench

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// HoldPolicy is one way of holding terminating pods that the
// hold-precision measurement compares, under the JSON keys holds.<Name>.*.
type HoldPolicy struct {
	Name string
	// Flags are albdrain's manager flags for the policy; none means a
	// fixed preStop sleep instead of albdrain.
	Flags []string
	// SleepQuantile, for a fixed sleep, is the quantile of the true stops
	// observed earlier in the run that the sleep is set to, rounded up to
	// whole seconds as the native sleep action counts them.
	SleepQuantile float64
	// MaxOverHold, when set, is the target for release minus true stop of
	// a pod that received rate requests per second; the policy's p99 is
	// held to it pod by pod.
	MaxOverHold func(rate float64) time.Duration
	// Outcome is the hold outcome the policy's releases are counted under.
	Outcome contract.Outcome
}

// albdrain reports whether the policy is one of albdrain's.
func (p HoldPolicy) albdrain() bool { return len(p.Flags) > 0 }

// protection is the scenario protection the policy runs under.
func (p HoldPolicy) protection() scenario.Protection {
	if p.albdrain() {
		return scenario.Albdrain
	}
	return scenario.FixedSleep
}

// quietGaps is the chart's default quietGaps: a pod's quiet period is that
// many mean gaps between its requests, within the webhook's bounds.
const quietGaps = 15

// HoldPolicies are the policies compared, albdrain's first: their rollouts
// observe the true stops that the fixed sleeps are then set from. settle is
// the draining policy's settle time; quietMin and quietMax bound the quiet
// policy's quiet period. A new release policy is one more line here.
func HoldPolicies(settle, quietMin, quietMax time.Duration) []HoldPolicy {
	// The target of issue 12: p99 over-hold within the quiet period the
	// traffic sizes, plus a second.
	quietBound := func(rate float64) time.Duration {
		if rate <= 0 {
			return quietMax + time.Second
		}
		gaps := time.Duration(quietGaps / rate * float64(time.Second))
		return min(max(gaps, quietMin), quietMax) + time.Second
	}
	return []HoldPolicy{
		{Name: "quiet", Flags: []string{"--release-policy=quiet"}, Outcome: contract.OutcomeQuiet, MaxOverHold: quietBound},
		{Name: "deregistered", Flags: []string{"--release-policy=deregistered"}, Outcome: contract.OutcomeDeregistered},
		{Name: "draining", Flags: []string{"--release-policy=draining", "--settle-time=" + settle.String()}, Outcome: contract.OutcomeDrainingSettled},
		{Name: "fixed_p50", SleepQuantile: 0.50},
		{Name: "fixed_p90", SleepQuantile: 0.90},
		{Name: "fixed_p99", SleepQuantile: 0.99},
	}
}

// fixedSleep is the whole-second sleep at quantile q of the observed true
// stops (seconds), at least one second.
func fixedSleep(trueStops []float64, q float64) time.Duration {
	return time.Duration(max(1, math.Ceil(percentile(trueStops, 100*q)))) * time.Second
}

// policyFigures adds one policy's figures to s and, unless p is the zero
// policy of the unprotected baseline, its targets as table rows, against
// the hindsight-minimal safe fixed sleep of the same run.
func policyFigures(s *Section, name string, p HoldPolicy, rate float64, pods []podHold, minSafe float64, requests, failed int) {
	var holds, stops, over []float64
	podsFailed := 0
	for _, h := range pods {
		holds = append(holds, h.hold.Seconds())
		stops = append(stops, h.trueStop.Seconds())
		over = append(over, h.overHold().Seconds())
		if h.failed > 0 {
			podsFailed++
		}
	}
	k := func(key string) string { return name + "." + key }
	s.Add(k("errors"), float64(failed))
	s.Add(k("requests"), float64(requests))
	s.Add(k("pods"), float64(len(pods)))
	s.Add(k("pods_with_errors"), float64(podsFailed))
	s.Add(k("hold_median_s"), percentile(holds, 50))
	s.Add(k("hold_p99_s"), percentile(holds, 99))
	s.Add(k("true_stop_median_s"), percentile(stops, 50))
	s.Add(k("true_stop_max_s"), maximum(stops))
	s.Add(k("over_hold_min_s"), minimum(over))
	s.Add(k("over_hold_median_s"), percentile(over, 50))
	s.Add(k("over_hold_p99_s"), percentile(over, 99))
	s.Add(k("ratio_vs_min_safe"), percentile(holds, 50)/minSafe)
	// No policy that loses no request holds a pod less than its true stop:
	// releasing each pod exactly then gives the lowest ratio this run's
	// lags allow.
	floor := percentile(stops, 50) / minSafe
	s.Add(k("ratio_floor"), floor)
	// Beside the ratio to the largest true stop, the one to the pods' own:
	// how much longer than its typical pod needed a policy holds.
	s.Add(k("ratio_vs_true_stop_median"), percentile(holds, 50)/percentile(stops, 50))
	if p.Name == "" {
		return // the unprotected baseline: figures, no targets
	}
	s.Compare(Comparison{
		What: name + ": failed requests", Value: float64(failed), Baseline: float64(requests), BaselineWhat: "requests",
		Target: "0", Met: failed == 0,
	})
	s.Compare(Comparison{
		What: name + ": hold median (s)", Value: percentile(holds, 50), Baseline: minSafe, BaselineWhat: "min safe fixed sleep",
		Target: fmt.Sprintf("<= 0.4 x min safe (a release at each pod's true stop: %.2f x)", floor), Met: percentile(holds, 50) <= 0.4*minSafe,
	})
	if p.MaxOverHold != nil {
		overHoldTargets(s, name, p, rate, pods, over)
	}
}

// overHoldTargets holds each pod's over-hold to the quiet period plus a
// second, twice: the period the helper sized from the traffic it saw, which
// says whether anything but the pod's own silence delayed the release; and
// the period the pod's true rate sizes, which adds what the helper could
// not know from a few seconds of arrivals. over is each pod's over-hold in
// seconds, as policyFigures computed it.
func overHoldTargets(s *Section, name string, p HoldPolicy, rate float64, pods []podHold, over []float64) {
	k := func(key string) string { return name + "." + key }
	var excess, own, sized, bounds []float64
	for _, h := range pods {
		b := p.MaxOverHold(h.rate).Seconds()
		bounds = append(bounds, b)
		excess = append(excess, h.overHold().Seconds()-b)
		own = append(own, (h.overHold() - h.quietPeriod).Seconds())
		if nominal := b - 1; nominal > 0 && h.quietPeriod > 0 {
			sized = append(sized, h.quietPeriod.Seconds()/nominal)
		}
	}
	s.Add(k("over_hold_excess_p99_s"), percentile(excess, 99))
	s.Add(k("over_hold_beyond_own_quiet_p99_s"), percentile(own, 99))
	if len(sized) > 0 {
		s.Add(k("quiet_period_vs_true_rate_p1"), percentile(sized, 1))
		s.Add(k("quiet_period_vs_true_rate_p50"), percentile(sized, 50))
		s.Add(k("quiet_period_vs_true_rate_p99"), percentile(sized, 99))
	}
	s.Compare(Comparison{
		What: name + ": over-hold p99 (s)", Value: percentile(over, 99), Baseline: percentile(bounds, 50) - 1, BaselineWhat: "median quiet period at the pods' true rates",
		Target: "<= each pod's own quiet period + 1 s", Met: percentile(own, 99) <= 1,
	})
	s.Compare(Comparison{
		What: name + ": over-hold p99 (s)", Value: percentile(over, 99), Baseline: percentile(bounds, 50) - 1, BaselineWhat: "median quiet period at the pods' true rates",
		Target: fmt.Sprintf("<= quiet period at each pod's true rate + 1 s (nominal %.3g s)", p.MaxOverHold(rate).Seconds()), Met: percentile(excess, 99) <= 0,
	})
}

// SelectPolicies keeps the policies of all named in names, in all's order;
// no names keeps every one. An unknown name is an error.
func SelectPolicies(all []HoldPolicy, names []string) ([]HoldPolicy, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []HoldPolicy
	for _, n := range names {
		if !slices.ContainsFunc(all, func(p HoldPolicy) bool { return p.Name == n }) {
			return nil, fmt.Errorf("unknown hold policy %q", n)
		}
	}
	for _, p := range all {
		if slices.Contains(names, p.Name) {
			out = append(out, p)
		}
	}
	return out, nil
}
