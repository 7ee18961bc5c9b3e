package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	drainwatcher "github.com/albdrain/albdrain/drain/watcher"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// BudgetOptions shape the ELBv2 budget measurement.
type BudgetOptions struct {
	// Pods terminate, spread evenly over Spread, across TargetGroups.
	Pods, TargetGroups int
	Spread             time.Duration
	// DeregistrationDelay is the target groups' draining time: how long
	// each hold lasts, and so how many overlap.
	DeregistrationDelay time.Duration
	// LBCLag is how long after a pod's deletion its target is deregistered,
	// as the load balancer controller would.
	LBCLag time.Duration
	// Progress receives a line at each step.
	Progress func(format string, args ...any)
}

// budgetAppID marks the watcher's calls in the emulator's call log.
const budgetAppID = "albdrain-bench"

// MeasureBudget terminates o.Pods managed pods within o.Spread across
// o.TargetGroups target groups, against a real kube-apiserver and albdrain's
// watcher (drain.Setup with its default poll interval and API budget) in
// this process. Each pod's hold is asked for from the pod's own loopback IP
// as the in-pod helper would; the load balancer controller's part
// (deregistering the target) is played directly on the emulator, so the
// emulator's call log holds the watcher's calls only. It counts the
// watcher's DescribeTargetHealth calls in every poll-interval window against
// one call per held pod per interval, what polling each pod on its own
// would cost.
func MeasureBudget(ctx context.Context, o BudgetOptions) (_ *Section, err error) {
	o.Progress("starting kube-apiserver and etcd, and the ALB emulator")
	env, stopEnv, err := kubetest.Run(kubetest.WithTargetGroupBindingCRD())
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stopEnv()) }()
	emu, err := albemu.New(albemu.Options{
		DefaultDeregistrationDelay: o.DeregistrationDelay,
		// Nothing listens on the pods' IPs; rare checks keep the emulator
		// from spending the machine on failing probes of 1,000 targets.
		DefaultHealthCheck: albemu.HealthCheck{Interval: 30 * time.Second, Timeout: 5 * time.Second},
	})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, emu.Close()) }()

	fleet, err := newFleet(ctx, env, emu, o)
	if err != nil {
		return nil, err
	}
	cfg := drainwatcher.NewConfig()
	cfg.AWSRegion, cfg.AWSEndpointURL = "us-east-1", emu.URL()
	awsCfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEMULATOR", "emulator-secret", ""),
		AppID:       budgetAppID,
	}
	w, err := startWatcher(ctx, env.Config, cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, w.stop()) }()

	o.Progress("terminating %d pods over %s across %d target groups (deregistration delay %s)", o.Pods, o.Spread, o.TargetGroups, o.DeregistrationDelay)
	start := time.Now()
	runs, peakHeld := fleet.terminateAll(ctx, w.holdURL, o)
	end := time.Now()

	outcomes := map[contract.Outcome]int{}
	var holdSecs float64
	var releaseDelays []float64
	for _, r := range runs {
		if r.err != nil {
			return nil, r.err
		}
		outcomes[r.outcome]++
		holdSecs += r.end.Sub(r.start).Seconds()
		// How long after the target was gone (deregistration plus delay)
		// its pod was let go: the cost of polling, and of the budget.
		releaseDelays = append(releaseDelays, r.end.Sub(r.deregistered.Add(o.DeregistrationDelay)).Seconds())
	}
	var dth, describes []time.Time
	attrs := 0
	for _, c := range emu.Calls() {
		if !strings.Contains(c.UserAgent, "app/"+budgetAppID) || c.Time.Before(start) || c.Time.After(end) {
			continue
		}
		switch {
		case c.Action == "DescribeTargetHealth":
			dth = append(dth, c.Time)
		case c.Action == "DescribeTargetGroupAttributes":
			attrs++
		}
		if strings.HasPrefix(c.Action, "Describe") {
			describes = append(describes, c.Time)
		}
	}
	slices.SortFunc(dth, time.Time.Compare)
	slices.SortFunc(describes, time.Time.Compare)

	interval := cfg.PollInterval
	budget := cfg.APIRate*interval.Seconds() + float64(cfg.APIBurst)
	peak := float64(peakInWindow(dth, interval))
	allPeak := float64(peakInWindow(describes, interval))
	naiveTotal := holdSecs / interval.Seconds()
	s := &Section{Name: "elbv2", Notes: []string{
		fmt.Sprintf("%d managed pods in a real kube-apiserver terminate evenly over %s across %d target groups of the emulated ALB (real SDK);",
			o.Pods, o.Spread, o.TargetGroups),
		fmt.Sprintf("each asks albdrain's watcher (defaults: --poll-interval=%s --aws-api-qps=%g --aws-api-burst=%d) for its hold from its own IP;",
			interval, cfg.APIRate, cfg.APIBurst),
		fmt.Sprintf("its target is deregistered %s after the deletion and drains for %s; \"naive\" is one call per held pod per interval",
			o.LBCLag, o.DeregistrationDelay),
	}}
	s.Add("describe_calls_peak_per_interval", peak)
	s.Add("target_groups", float64(o.TargetGroups))
	s.Add("held_pods", float64(peakHeld))
	s.Add("pods", float64(o.Pods))
	s.Add("budget_per_interval", budget)
	s.Add("describe_all_peak_per_interval", allPeak)
	s.Add("naive_calls_peak_per_interval", float64(peakHeld))
	s.Add("describe_calls_total", float64(len(dth)))
	s.Add("describe_attributes_calls_total", float64(attrs))
	s.Add("naive_calls_total", naiveTotal)
	s.Add("holds_deregistered", float64(outcomes[contract.OutcomeDeregistered]))
	s.Add("holds_other_outcome", float64(len(runs)-outcomes[contract.OutcomeDeregistered]))
	s.Add("release_after_gone_p50_s", percentile(releaseDelays, 50))
	s.Add("release_after_gone_p99_s", percentile(releaseDelays, 99))
	s.Compare(Comparison{
		What: "DescribeTargetHealth peak per poll interval", Value: peak,
		Baseline: float64(peakHeld), BaselineWhat: "one per held pod",
		Target: fmt.Sprintf("<= %d target groups; all Describe* (%g) <= budget %g", o.TargetGroups, allPeak, budget),
		Met:    peak <= float64(o.TargetGroups) && allPeak <= budget,
	})
	return s, nil
}
