package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// scenarioPodPort is the port the scenarios' pods serve and are registered on.
const scenarioPodPort = 8080

// HoldOptions shape the hold-precision measurement.
type HoldOptions struct {
	// Replicas is the Deployment's size in each rollout.
	Replicas int32
	// Rollouts is how many rolling restarts run under albdrain.
	Rollouts int
	// Settle is the watcher's settle time under the draining policy.
	Settle time.Duration
	// Progress receives a line at each step.
	Progress func(string)
}

// held is one pod's termination under albdrain, on the ALB's clock.
type held struct {
	// lag is from the start of the preStop hook to the ALB's last routing
	// decision for the pod: the shortest fixed sleep that would have
	// served it without errors.
	lag time.Duration
	// afterStop is from that moment to the end of the hold.
	afterStop time.Duration
	hold      time.Duration
}

// MeasureHolds rolls a Deployment behind the emulated ALB under steady
// traffic: once unprotected, for the baseline's errors, then Rollouts times
// with albdrain's watcher on the draining release policy. For every held
// pod it times the moment the ALB's data plane stopped routing new requests
// to it (its routing-set change, after the propagation lag) against the end
// of its hold. The cluster's manager is left on the draining policy.
func MeasureHolds(ctx context.Context, c *cluster.Cluster, t cluster.Timings, o HoldOptions) (*Section, error) {
	routes := watchRoutes(c.Emulator)
	defer routes.stop()

	base, err := scenario.Run(ctx, c, scenario.Spec{Protection: scenario.Baseline, Action: scenario.RollingRestart, Replicas: o.Replicas, Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	policy := []string{"--release-policy=draining", "--settle-time=" + o.Settle.String()}
	o.Progress(fmt.Sprintf("restarting albdrain's manager with %v", policy))
	if err := c.Albdrain.RestartWith(ctx, policy...); err != nil {
		return nil, err
	}
	var (
		pods             []held
		requests, failed int
		outcomes         = map[string]float64{}
	)
	for range o.Rollouts {
		res, err := scenario.Run(ctx, c, scenario.Spec{Protection: scenario.Albdrain, Action: scenario.RollingRestart, Replicas: o.Replicas, Progress: o.Progress})
		if err != nil {
			return nil, err
		}
		requests += res.Summary.Requests
		failed += res.Summary.Errors
		for outcome, n := range res.Albdrain.Holds {
			outcomes[outcome] += n
		}
		for _, term := range res.Terminations {
			h, err := heldPod(term, routes)
			if err != nil {
				return nil, fmt.Errorf("namespace %s: %w", res.Namespace, err)
			}
			pods = append(pods, h)
		}
	}

	var lags, afterStop, holds, fixedAfterStop []float64
	for _, p := range pods {
		lags = append(lags, p.lag.Seconds())
		afterStop = append(afterStop, p.afterStop.Seconds())
		holds = append(holds, p.hold.Seconds())
	}
	needed := maximum(lags)
	for _, l := range lags {
		fixedAfterStop = append(fixedAfterStop, needed-l)
	}
	bound := (t.WatcherPoll + t.QuietPeriod).Seconds()
	s := &Section{Name: "drain", Notes: []string{
		fmt.Sprintf("%d rolling restarts of %d pods under steady traffic through the emulated ALB (propagation lag %s, load balancer controller lag %s-%s,",
			o.Rollouts, o.Replicas, t.PropagationLag, t.LBCMinLag, t.LBCMaxLag),
		fmt.Sprintf("deregistration delay %s), albdrain with --release-policy=draining --settle-time=%s --poll-interval=%s --quiet-period=%s;",
			t.DeregistrationDelay, o.Settle, t.WatcherPoll, t.QuietPeriod),
		"\"stop\" is when the ALB's data plane stopped routing new requests to the pod (its routing set changed); the fixed sleep",
		"needed is the longest time from a preStop's start to that moment over the same rollouts; baseline errors: one unprotected rollout",
	}}
	s.Add("release_after_stop_p99_s", percentile(afterStop, 99))
	s.Add("release_after_stop_p50_s", percentile(afterStop, 50))
	s.Add("release_after_stop_min_s", minimum(afterStop))
	s.Add("release_after_stop_bound_s", bound)
	s.Add("fixed_sleep_needed_s", needed)
	s.Add("fixed_sleep_needed_whole_s", math.Ceil(needed))
	s.Add("hold_mean_s", mean(holds))
	s.Add("hold_p50_s", percentile(holds, 50))
	s.Add("hold_p99_s", percentile(holds, 99))
	s.Add("hold_max_s", maximum(holds))
	s.Add("held_pods", float64(len(pods)))
	s.Add("holds_draining_settled", outcomes[string(contract.OutcomeDrainingSettled)])
	s.Add("holds_other_outcome", float64(len(pods))-outcomes[string(contract.OutcomeDrainingSettled)])
	s.Add("errors_albdrain", float64(failed))
	s.Add("requests_albdrain", float64(requests))
	s.Add("errors_baseline", float64(base.Summary.Errors))
	s.Add("requests_baseline", float64(base.Summary.Requests))
	s.Compare(Comparison{
		What: "release after ALB stop, p99 (s)", Value: percentile(afterStop, 99),
		Baseline: percentile(fixedAfterStop, 99), BaselineWhat: "fixed sleep needed",
		Target: fmt.Sprintf("< poll + quiet = %.3g s", bound), Met: percentile(afterStop, 99) < bound,
	})
	// Every hold must cover its own pod's lag for zero errors, so the
	// longest hold cannot be shorter than the longest lag: the typical
	// pod's hold is what can beat a sleep every pod has to take.
	s.Compare(Comparison{
		What: "hold p50 (s)", Value: percentile(holds, 50), Baseline: needed, BaselineWhat: "fixed sleep needed",
		Target: fmt.Sprintf("< fixed sleep needed (native sleep: %g s)", math.Ceil(needed)), Met: percentile(holds, 50) < needed,
	})
	s.Compare(Comparison{
		What: "failed requests in rollouts", Value: float64(failed), Baseline: float64(base.Summary.Errors), BaselineWhat: "unprotected",
		Target: "0", Met: failed == 0,
	})
	return s, nil
}

// heldPod times one termination under albdrain: it must have run the
// injected helper to completion, and its target must have left the ALB.
func heldPod(term kubelet.Termination, routes *routeExits) (held, error) {
	if len(term.Hooks) != 1 || term.Hooks[0].Action != kubelet.ActionExec || term.Hooks[0].Err != "" || term.Killed {
		return held{}, fmt.Errorf("pod %s: hooks %+v, killed %v: want one completed helper hold", term.Name, term.Hooks, term.Killed)
	}
	h := term.Hooks[0]
	stop, ok := routes.exit(albemu.Target{ID: term.IP, Port: scenarioPodPort})
	if !ok {
		return held{}, fmt.Errorf("pod %s: its target %s never left the ALB's routing set", term.Name, term.IP)
	}
	return held{lag: stop.Sub(h.Start), afterStop: h.End.Sub(stop), hold: h.Duration()}, nil
}
