package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/scenario"
)

// HoldOptions shape the hold-precision measurement.
type HoldOptions struct {
	// Replicas is the Deployment's size in each rollout.
	Replicas int32
	// Rollouts is how many rolling restarts run per albdrain policy at
	// Rate, FixedRollouts per fixed sleep (default Rollouts). Each rollout
	// draws its lags from a seed of its own: the cluster's, plus the
	// rollout's number in the run.
	Rollouts, FixedRollouts int
	// Rate and LowRate are the traffic in requests per second per pod: each
	// albdrain policy also gets one rollout at LowRate, where a quiet pod
	// is normal and proves nothing.
	Rate, LowRate float64
	// Policies are compared in this order; albdrain's must come first.
	Policies []HoldPolicy
	// Progress receives a line at each step.
	Progress func(string)
}

// run is what the measurement keeps of one rollout.
type run struct {
	policy   string // JSON name: the policy's, with "_low_rate" at LowRate
	seed     uint64 // of the rollout's lag draws
	pods     []podHold
	requests int
	failed   int
	released float64 // holds ended by the policy's own outcome
}

// MeasureHolds rolls a Deployment behind the emulated ALB, whose nodes draw
// their lags from the cluster's model: once unprotected, then under each of
// albdrain's policies, then with fixed preStop sleeps set from the true
// stops observed so far (their p50, p90, p99). For every pod it takes the
// emulator's ground truth of when the last ALB node stopped routing to it
// (its true stop) and compares the pod's release with it. The cluster's
// manager is left on the last albdrain policy.
func MeasureHolds(ctx context.Context, c *cluster.Cluster, t cluster.Timings, o HoldOptions) (*Section, error) {
	seq := uint64(0)
	rollout := func(name string, spec scenario.Spec) (*run, error) {
		spec.Action, spec.Replicas, spec.Progress = scenario.RollingRestart, o.Replicas, o.Progress
		spec.Poisson = true // as a service's many independent clients send, and as the quiet period's reasoning assumes
		seed := t.Seed + seq
		seq++
		c.Emulator.SetLag(t.LagModel(), seed)
		res, err := scenario.Run(ctx, c, spec)
		if err != nil {
			return nil, err
		}
		r := &run{policy: name, seed: seed, requests: res.Summary.Requests, failed: res.Summary.Errors}
		o.Progress(fmt.Sprintf("%s rollout, seed %d: %d of %d requests failed", name, seed, r.failed, r.requests))
		for _, term := range res.Terminations {
			h, err := podHoldOf(term, res, spec.Protection)
			if err != nil {
				return nil, fmt.Errorf("namespace %s: %w", res.Namespace, err)
			}
			r.pods = append(r.pods, h)
		}
		if res.Albdrain != nil {
			for _, p := range o.Policies {
				if p.Name == name || p.Name+"_low_rate" == name {
					r.released = res.Albdrain.Holds[string(p.Outcome)]
				}
			}
		}
		return r, nil
	}
	base, err := rollout("baseline", scenario.Spec{Protection: scenario.Baseline, Rate: o.Rate})
	if err != nil {
		return nil, err
	}
	runs := []*run{base}
	observed := func() []float64 {
		var out []float64
		for _, r := range runs {
			for _, p := range r.pods {
				out = append(out, p.trueStop.Seconds())
			}
		}
		return out
	}
	sleeps := map[string]float64{}
	for _, p := range o.Policies {
		spec := scenario.Spec{Protection: p.protection(), Rate: o.Rate}
		if p.albdrain() {
			o.Progress(fmt.Sprintf("restarting albdrain's manager with %v", p.Flags))
			if err := c.Albdrain.RestartWith(ctx, p.Flags...); err != nil {
				return nil, err
			}
		} else {
			spec.FixedSleep = fixedSleep(observed(), p.SleepQuantile)
			sleeps[p.Name] = spec.FixedSleep.Seconds()
			o.Progress(fmt.Sprintf("%s: a fixed preStop sleep of %s", p.Name, spec.FixedSleep))
		}
		rollouts := o.Rollouts
		if !p.albdrain() && o.FixedRollouts > 0 {
			rollouts = o.FixedRollouts
		}
		for range rollouts {
			r, err := rollout(p.Name, spec)
			if err != nil {
				return nil, err
			}
			runs = append(runs, r)
		}
		if p.albdrain() && o.LowRate > 0 {
			spec.Rate = o.LowRate
			r, err := rollout(p.Name+"_low_rate", spec)
			if err != nil {
				return nil, err
			}
			runs = append(runs, r)
		}
	}
	return holdSection(t, o, runs, observed(), sleeps), nil
}

// holdSection turns the rollouts into figures, per-pod lines and targets.
func holdSection(t cluster.Timings, o HoldOptions, runs []*run, trueStops []float64, sleeps map[string]float64) *Section {
	minSafe := maximum(trueStops)
	s := &Section{Name: "holds", Notes: []string{
		fmt.Sprintf("rolling restarts of %d pods behind an emulated ALB of %d nodes, each drawing its lag from %s (seed %d);",
			o.Replicas, max(t.Nodes, 1), t.LagModel(), t.Seed),
		fmt.Sprintf("load balancer controller lag %s-%s, readiness-gate requeue %s, deregistration delay %s, draining targets health-checked: %v;",
			t.LBCMinLag, t.LBCMaxLag, t.LBCRequeue, t.DeregistrationDelay, t.HealthCheckDraining),
		fmt.Sprintf("traffic %g requests/s per pod, arriving as a Poisson process; each albdrain policy also has a rollout at %g requests/s per pod (<policy>_low_rate);", o.Rate, o.LowRate),
		"true stop: from the preStop's start to when the last ALB node stopped routing new requests to the pod (emulator ground truth);",
		"over-hold: release minus true stop (negative: released while still routed); min safe fixed sleep: the largest true stop of the run;",
		"quiet's over-hold target is pod by pod: the quiet period sized by the requests the ALB routed to that pod in the 5 s before its hold, plus 1 s;",
		fmt.Sprintf("%d rollout(s) per albdrain policy, each with lags drawn from a seed of its own; fixed sleeps are set from the true stops observed before them, rounded up to whole seconds", o.Rollouts),
	}}
	s.Add("min_safe_fixed_sleep_s", minSafe)
	s.Add("true_stop_p50_s", percentile(trueStops, 50))
	s.Add("true_stop_p90_s", percentile(trueStops, 90))
	s.Add("true_stop_p99_s", percentile(trueStops, 99))
	s.Add("nodes", float64(max(t.Nodes, 1)))
	s.Add("rate_per_pod", o.Rate)
	for _, name := range slices.Sorted(maps.Keys(sleeps)) {
		s.Add(name+".sleep_s", sleeps[name])
	}
	byPolicy := map[string][]*run{}
	var order []string
	for _, r := range runs {
		if _, ok := byPolicy[r.policy]; !ok {
			order = append(order, r.policy)
		}
		byPolicy[r.policy] = append(byPolicy[r.policy], r)
	}
	policies := map[string]HoldPolicy{}
	for _, p := range o.Policies {
		policies[p.Name], policies[p.Name+"_low_rate"] = p, p
	}
	for _, name := range order {
		var pods []podHold
		requests, failed, released := 0, 0, 0.0
		for _, r := range byPolicy[name] {
			pods = append(pods, r.pods...)
			requests, failed, released = requests+r.requests, failed+r.failed, released+r.released
		}
		rate := o.Rate
		if strings.HasSuffix(name, "_low_rate") {
			rate = o.LowRate
		}
		policyFigures(s, name, policies[name], rate, pods, minSafe, requests, failed)
		if policies[name].albdrain() {
			s.Add(name+".released_by_policy", released)
		}
		rolloutFigures(s, name, byPolicy[name])
		s.Details = append(s.Details, name+":")
		for _, p := range pods {
			s.Details = append(s.Details, "  "+p.String())
		}
	}
	if p99, ok := sleeps["fixed_p99"]; ok && len(byPolicy["quiet"]) > 0 {
		var holds []float64
		for _, r := range byPolicy["quiet"] {
			for _, p := range r.pods {
				holds = append(holds, p.hold.Seconds())
			}
		}
		s.Compare(Comparison{
			What: "quiet: hold median (s)", Value: percentile(holds, 50), Baseline: p99, BaselineWhat: "fixed sleep at the p99 true stop",
			Target: "<= 0.5 x that sleep", Met: percentile(holds, 50) <= 0.5*p99,
		})
	}
	return s
}

// rolloutFigures adds a policy's failed requests rollout by rollout: the
// goal is none in every rollout, not few on average.
func rolloutFigures(s *Section, name string, runs []*run) {
	worst, failing := 0, 0
	line := name + " failed requests per rollout (seed: failed/requests):"
	for _, r := range runs {
		worst = max(worst, r.failed)
		if r.failed > 0 {
			failing++
		}
		line += fmt.Sprintf(" %d:%d/%d", r.seed, r.failed, r.requests)
	}
	s.Add(name+".rollouts", float64(len(runs)))
	s.Add(name+".rollouts_with_errors", float64(failing))
	s.Add(name+".max_errors_in_a_rollout", float64(worst))
	s.Details = append(s.Details, line)
}
