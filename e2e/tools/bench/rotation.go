package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// The goals for a rotation.
const (
	RotationCallRatioTarget   = 1.2
	RotationPollLatencyTarget = 2.0
	RotationRSSTargetMiB      = 150
)

// RotationOptions shape the rotation measurement.
type RotationOptions struct {
	// Pods are evicted over Spread from one node, across TargetGroups
	// behind an ALB of Nodes nodes drawing lags from Lag (seeded by Seed).
	Pods, TargetGroups, Nodes int
	Spread                    time.Duration
	Lag                       albemu.LagModel
	Seed                      uint64
	// DeregistrationDelay is the target groups' draining time; LBCLag how
	// long after a deletion the load balancer controller deregisters.
	DeregistrationDelay, LBCLag time.Duration
	// Replicas of albdrain's manager run as processes of Manager.
	Replicas int
	Manager  string
	// Dir receives the managers' kubeconfig, certificates and logs.
	Dir string
	// Rate is the Poisson traffic in requests per second over all groups.
	Rate float64
	// PollInterval is the managers' --poll-interval (the chart's).
	PollInterval time.Duration
	// Scales are the curve's sizes, each at most Pods.
	Scales []int
	// DuringDrain, when set, runs while the full-size shared rotation
	// drains its node and its replacement pods are created: a measurement
	// that must see the rotation's load.
	DuringDrain func(ctx context.Context) error
	// Progress receives a line at each step.
	Progress func(format string, args ...any)
}

// MeasureRotation drains a node of o.Pods managed pods, each with a real
// server behind the emulated ALB and albdrain's helper in this process,
// against o.Replicas manager processes that share their polls; beside it
// the same rotation with --share-polls=false, and with no hold at all; and
// the shared rotation at each of o.Scales for the curves.
func MeasureRotation(ctx context.Context, o RotationOptions) (_ *Section, curve []*rotationRun, err error) {
	o.Progress("starting kube-apiserver and etcd")
	env, stopEnv, err := kubetest.Run(kubetest.WithTargetGroupBindingCRD())
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, stopEnv()) }()
	m, err := newManagerSetup(ctx, env, o.Manager, o.Dir)
	if err != nil {
		return nil, nil, err
	}
	cl, err := unthrottledClient(env.Config)
	if err != nil {
		return nil, nil, err
	}
	e, err := newRotationEnv(ctx, o, m, cl)
	if err != nil {
		return nil, nil, err
	}
	specs := []runSpec{
		{name: "shared", pods: o.Pods, share: true, protected: true, during: o.DuringDrain},
		{name: "unshared", pods: o.Pods, protected: true},
		{name: "unprotected", pods: o.Pods},
	}
	for _, n := range o.Scales {
		if n < o.Pods {
			specs = append(specs, runSpec{name: "shared", pods: n, share: true, protected: true})
		}
	}
	runs := map[string]*rotationRun{}
	for _, spec := range specs {
		r, err := e.rotate(ctx, spec)
		if err != nil {
			return nil, nil, err
		}
		runs[r.label()] = r
		if r.share {
			curve = append(curve, r)
		}
	}
	slices.SortFunc(curve, func(a, b *rotationRun) int { return a.pods - b.pods })
	full := runs[fmt.Sprintf("shared@%d", o.Pods)]
	return rotationSection(o, full, runs[fmt.Sprintf("unshared@%d", o.Pods)], runs[fmt.Sprintf("unprotected@%d", o.Pods)], curve), curve, nil
}

// rotationFigures are one run's figures.
type rotationFigures struct {
	outcomes         map[contract.Outcome]int
	holdP50, holdP99 float64
	overP50, overP99 float64
	pollP50, pollP99 float64 // poll latency in poll intervals
	// askP99 is how long after the deletion began the helper asked, and
	// answerP50/P99 how long the watcher then took to answer, in seconds:
	// which side of the hold a poll latency comes from.
	askP99, answerP50, answerP99 float64
	callRatio, callRatioWaiting  float64
	callsPerInterval             float64 // mean, over intervals with holds waiting
	replicaCallsPerInterval      []float64
	peakGroups                   int
	cpuMax, rssMax, sharedRead   float64
}

func figuresOf(r *rotationRun, interval time.Duration) rotationFigures {
	f := rotationFigures{outcomes: map[contract.Outcome]int{}}
	var holds, over, poll, ask, answer []float64
	// held spans each hold, as the issue counts target groups with holds;
	// waits only its wait for the watcher's answer.
	var held, waits []waitSpan
	for _, t := range r.terminations {
		f.outcomes[t.outcome]++
		trueStop := t.stop.TrueStop().Sub(t.start).Seconds()
		hold := t.end.Sub(t.start).Seconds()
		holds, over = append(holds, hold), append(over, hold-trueStop)
		held = append(held, waitSpan{Group: t.group, From: t.start, To: t.end})
		if !t.answered.IsZero() {
			poll = append(poll, t.answered.Sub(t.stop.Deregistered).Seconds()/interval.Seconds())
			waits = append(waits, waitSpan{Group: t.group, From: t.start, To: t.answered})
			ask, answer = append(ask, t.asked.Sub(t.start).Seconds()), append(answer, t.answered.Sub(t.asked).Seconds())
		}
	}
	f.holdP50, f.holdP99 = percentile(holds, 50), percentile(holds, 99)
	f.overP50, f.overP99 = percentile(over, 50), percentile(over, 99)
	f.pollP50, f.pollP99 = percentile(poll, 50), percentile(poll, 99)
	f.askP99, f.answerP50, f.answerP99 = percentile(ask, 99), percentile(answer, 50), percentile(answer, 99)
	var all []time.Time
	for _, c := range r.dth {
		all = append(all, c...)
	}
	f.callRatioWaiting = callRatio(intervalLoad(all, waits, r.drainStart, r.ended, interval))
	perCall, perGroups := intervalLoad(all, held, r.drainStart, r.ended, interval)
	f.callRatio = callRatio(perCall, perGroups)
	f.peakGroups = slices.Max(append(perGroups, 0))
	active := 0
	for _, g := range perGroups {
		if g > 0 {
			active++
		}
	}
	for _, c := range r.dth {
		pc, _ := intervalLoad(c, held, r.drainStart, r.ended, interval)
		n := 0
		for k, g := range perGroups {
			if g > 0 {
				n += pc[k]
			}
		}
		f.replicaCallsPerInterval = append(f.replicaCallsPerInterval, float64(n)/float64(max(active, 1)))
		f.callsPerInterval += float64(n) / float64(max(active, 1))
	}
	f.cpuMax, f.rssMax = slices.Max(append(r.cpu, 0)), slices.Max(append(r.hwm, 0))
	for _, s := range r.sharedRead {
		f.sharedRead += s
	}
	return f
}

// rotationSection turns the runs into the report's figures and targets.
func rotationSection(o RotationOptions, shared, unshared, unprotected *rotationRun, curve []*rotationRun) *Section {
	s := &Section{Name: "rotation", Notes: []string{
		fmt.Sprintf("a node drain evicts %d managed pods over %s across %d target groups of an emulated ALB of %d nodes (lags %s, deregistration delay %s,",
			o.Pods, o.Spread, min(o.TargetGroups, o.Pods), o.Nodes, o.Lag, o.DeregistrationDelay),
		fmt.Sprintf("load balancer controller lag %s, the real controller's measured median reaction); each pod serves HTTP on its own loopback IP, and each group has a successor on the other node, under %g requests/s of Poisson traffic over all groups;", o.LBCLag, o.Rate),
		fmt.Sprintf("%d albdrain manager processes (the chart's flags, --poll-interval=%s) hold them; each pod's preStop is albdrain's helper (drain/helper.Run)", o.Replicas, o.PollInterval),
		"in the bench's process, reaching replica i mod 3 over HTTPS from the pod's IP (the Service stand-in), its socket table read once per 250ms for all helpers;",
		"hold against true stop: the helper's end minus the emulator's ground truth of when the last ALB node stopped routing to the pod;",
		"poll latency: from DeregisterTargets to the watcher's answer to the helper, in poll intervals; calls per interval: DescribeTargetHealth",
		"in the emulator's call log (replicas told apart by SDK app id) over intervals with holds, against the groups with holds then (_waiting: holds waiting for the watcher's answer);",
		"baselines from the same run: the same rotation with --share-polls=false, and with no hold (the app stops at its deletion)",
	}}
	interval := o.PollInterval
	sf, uf := figuresOf(shared, interval), figuresOf(unshared, interval)
	timeoutsAndFallbacks := sf.outcomes[contract.OutcomeTimeout] + sf.outcomes[contract.OutcomeFallback]
	s.Add("pods", float64(o.Pods))
	s.Add("target_groups", float64(min(o.TargetGroups, o.Pods)))
	s.Add("replicas", float64(o.Replicas))
	s.Add("requests", float64(shared.requests))
	s.Add("errors", float64(shared.failed))
	s.Add("unshared.errors", float64(unshared.failed))
	s.Add("unprotected.errors", float64(unprotected.failed))
	s.Add("unprotected.requests", float64(unprotected.requests))
	s.Add("errors_routed_to_evicted", float64(shared.failedEvicted))
	s.Add("unshared.errors_routed_to_evicted", float64(unshared.failedEvicted))
	s.Add("unprotected.errors_routed_to_evicted", float64(unprotected.failedEvicted))
	s.Add("timeouts_and_fallbacks", float64(timeoutsAndFallbacks))
	for _, oc := range contract.Outcomes {
		s.Add("outcome."+string(oc), float64(sf.outcomes[oc]))
		s.Add("outcome_share."+string(oc), float64(sf.outcomes[oc])/float64(len(shared.terminations)))
	}
	s.Add("hold_p50_s", sf.holdP50)
	s.Add("hold_p99_s", sf.holdP99)
	s.Add("over_hold_p50_s", sf.overP50)
	s.Add("over_hold_p99_s", sf.overP99)
	// Each figure beside the same rotation's with --share-polls=false.
	for _, p := range []struct {
		key              string
		shared, unshared float64
	}{
		{"describe_calls_per_interval_ratio", sf.callRatio, uf.callRatio},
		{"describe_calls_per_interval_ratio_waiting", sf.callRatioWaiting, uf.callRatioWaiting},
		{"describe_calls_per_interval", sf.callsPerInterval, uf.callsPerInterval},
		{"throttles", float64(shared.throttles), float64(unshared.throttles)},
		{"poll_latency_p50_intervals", sf.pollP50, uf.pollP50},
		{"poll_latency_p99_intervals", sf.pollP99, uf.pollP99},
		{"helper_ask_after_deletion_p99_s", sf.askP99, uf.askP99},
		{"answer_after_ask_p50_s", sf.answerP50, uf.answerP50},
		{"answer_after_ask_p99_s", sf.answerP99, uf.answerP99},
		{"replica_rss_mib_max", sf.rssMax, uf.rssMax},
		{"replica_cpu_s_max", sf.cpuMax, uf.cpuMax},
	} {
		s.Add(p.key, p.shared)
		s.Add("unshared."+p.key, p.unshared)
	}
	for k, c := range sf.replicaCallsPerInterval {
		s.Add(fmt.Sprintf("replica_%d.describe_calls_per_interval", k), c)
		s.Add(fmt.Sprintf("replica_%d.cpu_s", k), shared.cpu[k])
		s.Add(fmt.Sprintf("replica_%d.rss_peak_mib", k), shared.hwm[k])
		s.Add(fmt.Sprintf("replica_%d.shared_polls_read", k), shared.sharedRead[k])
	}
	s.Add("peak_groups_with_holds", float64(sf.peakGroups))
	s.Add("shared_polls_read", sf.sharedRead)
	s.Compare(Comparison{
		What: fmt.Sprintf("rotation of %d pods: failed requests", o.Pods), Value: float64(shared.failed),
		Baseline: float64(unprotected.failed), BaselineWhat: "no hold", Target: "0", Met: shared.failed == 0,
	})
	for _, c := range []Comparison{
		{
			What: "rotation: timeout or fallback outcomes", Value: float64(timeoutsAndFallbacks),
			Baseline: float64(uf.outcomes[contract.OutcomeTimeout] + uf.outcomes[contract.OutcomeFallback]),
			Target:   "0", Met: timeoutsAndFallbacks == 0,
		},
		{
			What: "rotation: DescribeTargetHealth per interval / groups with holds", Value: sf.callRatio, Baseline: uf.callRatio,
			Target: fmt.Sprintf("<= %g", RotationCallRatioTarget), Met: sf.callRatio <= RotationCallRatioTarget,
		},
		{
			What: "rotation: poll latency p99 (poll intervals)", Value: sf.pollP99, Baseline: uf.pollP99,
			Target: fmt.Sprintf("<= %g", RotationPollLatencyTarget), Met: sf.pollP99 <= RotationPollLatencyTarget,
		},
		{
			What: "rotation: replica peak RSS, max (MiB)", Value: sf.rssMax, Baseline: uf.rssMax,
			Target: fmt.Sprintf("< %d MiB", RotationRSSTargetMiB), Met: sf.rssMax < RotationRSSTargetMiB,
		},
		{
			What: "rotation: hold p99 minus true stop (s)", Value: sf.overP99, Baseline: uf.overP99,
			Target: ">= 0: never released while routed", Met: percentileMinOver(shared) >= 0,
		},
	} {
		c.BaselineWhat = "--share-polls=false"
		s.Compare(c)
	}
	s.Details = append(s.Details, "scaling (--share-polls, "+fmt.Sprint(o.Replicas)+" replicas):")
	s.Details = append(s.Details, curveTable(curve, interval)...)
	for _, r := range curve {
		f := figuresOf(r, interval)
		p := fmt.Sprintf("curve_%d.", r.pods)
		s.Add(p+"hold_p50_s", f.holdP50)
		s.Add(p+"hold_p99_s", f.holdP99)
		s.Add(p+"describe_calls_per_interval", f.callsPerInterval)
		s.Add(p+"describe_calls_per_interval_ratio", f.callRatio)
		s.Add(p+"poll_latency_p99_intervals", f.pollP99)
		s.Add(p+"replica_rss_mib_max", f.rssMax)
		s.Add(p+"errors", float64(r.failed))
	}
	return s
}

// percentileMinOver is the smallest release minus true stop of a run's
// pods, in seconds: negative when a pod was let go while still routed.
func percentileMinOver(r *rotationRun) float64 {
	var over []float64
	for _, t := range r.terminations {
		over = append(over, t.end.Sub(t.stop.TrueStop()).Seconds())
	}
	return minimum(over)
}

// curveTable prints the scaling curve, one row per scale.
func curveTable(curve []*rotationRun, interval time.Duration) []string {
	rows := []string{fmt.Sprintf("  %6s  %9s  %9s  %12s  %11s  %10s  %8s  %6s", "pods", "hold p50", "hold p99", "DTH/interval", "ratio", "poll p99", "RSS max", "failed")}
	for _, r := range curve {
		f := figuresOf(r, interval)
		rows = append(rows, fmt.Sprintf("  %6d  %8.1fs  %8.1fs  %12.2f  %11.2f  %9.2fi  %6.1fMi  %6d",
			r.pods, f.holdP50, f.holdP99, f.callsPerInterval, f.callRatio, f.pollP99, f.rssMax, r.failed))
	}
	return rows
}
