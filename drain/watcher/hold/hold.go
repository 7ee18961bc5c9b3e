// Package hold runs one hold: it finds the pod's target groups, bounds the
// hold, watches the pod's targets through the shared poller and applies the
// release policy, recording events, metrics and logs. A hold keeps no state
// outside the call, so a retried hold on a restarted or different replica
// recomputes everything from Kubernetes and ELBv2.
package hold

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/drain/watcher/release"
	"github.com/albdrain/albdrain/drain/watcher/targetgroups"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// DelaySource tells a target group's deregistration delay.
type DelaySource interface {
	DeregistrationDelay(ctx context.Context, arn string) (time.Duration, error)
}

// SettingSource tells a target group's protocol and health check.
type SettingSource interface {
	Setting(ctx context.Context, arn string) (targetgroups.Setting, error)
}

// Deregisterer removes a target, for early deregistration; deregister.Batcher
// batches the holds' requests per target group.
type Deregisterer interface {
	Deregister(ctx context.Context, arn string, target elbv2.Target) error
}

// Holder holds pods. Its exported fields are set once before use.
type Holder struct {
	Resolver targetgroups.Resolver
	Delays   DelaySource
	Settings SettingSource
	Poller   *elbv2.Poller
	Recorder events.EventRecorder
	Metrics  *metrics.Metrics

	Policy release.Policy
	// Settle is how long a target must drain under release.PolicyDraining.
	Settle time.Duration
	// FallbackAfter is how many consecutive failed polls end a hold in fallback.
	FallbackAfter int
	// Margin is added to the deregistration delay when bounding a hold.
	Margin time.Duration
	// Marker, when non-nil, keeps the draining start of the draining policy
	// on the pod, for a hold resumed elsewhere.
	Marker DrainingMarker
	// EarlyDeregister, when non-nil, deregisters a terminating pod's targets
	// at the start of its hold instead of waiting for the load balancer
	// controller to notice.
	EarlyDeregister Deregisterer
	// EndReportSlack is how long after a hold's bound a helper's end report
	// is still awaited before the hold counts as unreported; default a minute.
	EndReportSlack time.Duration
	// Ends, when non-nil, records each hold's end as the pod's one end
	// event, so that its outcome is counted once across replicas; when nil,
	// ends go through Recorder and are counted once per replica.
	Ends *EndEvents

	handoffs pendingHandoffs
	counted  counted
}

// Hold holds pod until it may stop or until requested, whichever is first,
// leaving the application budget (release.DefaultBudget when zero) before
// the pod's grace period ends, and says why it ended. It returns false if
// ctx ended first: the caller went away or the server is stopping, and a
// retry will decide.
func (h *Holder) Hold(ctx context.Context, pod *corev1.Pod, requested time.Time, budget time.Duration) (contract.Answer, bool) {
	start := time.Now()
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("pod", klog.KObj(pod)))
	h.Metrics.HoldsInFlight.Inc()
	defer h.Metrics.HoldsInFlight.Dec()

	if budget <= 0 {
		budget = release.DefaultBudget
	}
	a, ok := h.hold(ctx, pod, start, requested, budget)
	if !ok {
		log.FromContext(ctx).V(1).Info("hold abandoned", "cause", context.Cause(ctx))
		return contract.Answer{}, false
	}
	msg, took := a.Message, time.Since(start)
	if a.Handoff != nil {
		// Not an end: the helper reports it (End).
		bound := a.Handoff.Bound
		h.handoffs.await(ctx, pod, bound+h.endReportSlack(), h.Metrics.HoldEndsUnreported)
		log.FromContext(ctx).Info("deregistration begun; the helper waits for quiet", "after", took.Round(time.Millisecond).String(), "bound", bound.String(), "why", msg)
		h.Recorder.Eventf(pod, nil, corev1.EventTypeNormal, contract.ReasonHoldDeregistering, "Hold",
			"Deregistration begun in every target group after %s; releasing once no load-balancer traffic reaches the pod for its quiet period, at most %s: %s", took.Round(time.Second), bound.Round(time.Second), msg)
		return a, true
	}
	outcome := a.Final.Outcome
	ev := EndEvent{Outcome: outcome, Type: corev1.EventTypeNormal, Reason: contract.ReasonHoldReleased, Action: "Release",
		Note: fmt.Sprintf("Released after %s (%s): %s", took.Round(time.Second), outcome, msg)}
	switch outcome {
	case contract.OutcomeTimeout:
		ev.Type, ev.Reason, ev.Action = corev1.EventTypeWarning, contract.ReasonHoldTimedOut, "Hold"
		ev.Note = fmt.Sprintf("Hold timed out after %s: %s", took.Round(time.Second), msg)
	case contract.OutcomeFallback:
		ev.Type, ev.Reason, ev.Action = corev1.EventTypeWarning, contract.ReasonHoldFellBack, "Hold"
		ev.Note = fmt.Sprintf("Hold fell back to a fixed sleep after %s: %s", took.Round(time.Second), msg)
	}
	h.recordEnd(ctx, pod, ev, took, "after", took.Round(time.Millisecond).String(), "why", msg)
	return a, true
}

// hold decides the answer; ok is false when ctx ended first.
func (h *Holder) hold(ctx context.Context, pod *corev1.Pod, start, requested time.Time, budget time.Duration) (a contract.Answer, ok bool) {
	var deadline time.Time
	// bound is what is left of the hold's bound, for the helper's quiet wait.
	bound := func() time.Duration {
		if deadline.IsZero() {
			return 0
		}
		return max(time.Until(deadline), time.Millisecond)
	}
	final := func(o contract.Outcome, msg string) (contract.Answer, bool) {
		return contract.NewFinal(o, msg, contract.Wait{Bound: bound()}), true
	}
	targets, err := h.Resolver.Registrations(ctx, pod)
	switch {
	case ctx.Err() != nil:
		return a, false
	case err != nil:
		return final(contract.OutcomeFallback, fmt.Sprintf("finding the pod's target groups: %v", err))
	case len(targets) == 0 || pod.Status.PodIP == "":
		return contract.NewFinal(contract.OutcomeNotRegistered, "the pod is in no ip target group", contract.Wait{}), true
	}
	ip := pod.Status.PodIP

	deadline = release.Deadline(h.bounds(ctx, pod, targets, start, requested, budget))
	h.Recorder.Eventf(pod, nil, corev1.EventTypeNormal, contract.ReasonHoldStarted, "Hold",
		"Holding until the target %s leaves service in %d target group(s), at most %s", ip, len(targets), deadline.Sub(start).Round(time.Second))
	log.FromContext(ctx).Info("hold started", "targetGroups", len(targets), "deadline", deadline)
	if h.EarlyDeregister != nil && pod.DeletionTimestamp != nil {
		h.deregister(ctx, ip, targets)
	}

	followCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	updates := h.follow(followCtx, ip, targets)
	since := drainingSince(pod)
	obs := seed(targets, since)
	wasRegistered := passedReadinessGate(pod)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return a, false
		case <-timer.C:
			// No quiet wait: the bound has come.
			return contract.NewFinal(contract.OutcomeTimeout, "target still in service: "+describe(targets, obs), contract.Wait{}), true
		case u := <-updates:
			if u.Err != nil {
				obs[u.i] = release.Failed(obs[u.i])
				log.FromContext(ctx).Info("polling target health failed", "targetGroup", targets[u.i].TargetGroupARN, "failures", obs[u.i].Failures, "err", u.Err)
			} else {
				obs[u.i] = release.Observe(obs[u.i], u.State, u.GroupGone, time.Now())
				wasRegistered = wasRegistered || !release.IsOut(obs[u.i])
				if err := h.markDraining(ctx, pod, targets, obs, since); err != nil {
					log.FromContext(ctx).Info("could not record the draining start on the pod; a resumed hold would settle from scratch", "err", err)
				}
			}
			d := release.Decide(release.Input{
				Policy:        h.Policy,
				Settle:        h.Settle,
				FallbackAfter: h.FallbackAfter,
				Now:           time.Now(),
				WasRegistered: wasRegistered,
				Targets:       obs,
			})
			switch {
			case !d.Release:
			case d.Outcome == contract.OutcomeFallback:
				return final(d.Outcome, fmt.Sprintf("ELBv2 failed %d polls in a row: %v", h.FallbackAfter, u.Err))
			case d.Outcome == contract.OutcomeNotRegistered:
				return contract.NewFinal(d.Outcome, describe(targets, obs), contract.Wait{}), true
			default:
				// The helper waits for quiet after these, knowing the traffic.
				w := contract.Wait{Traffic: h.traffic(ctx, targets)}
				w.Bound = bound()
				if d.Handoff {
					return contract.NewHandoff(describe(targets, obs), w), true
				}
				return contract.NewFinal(d.Outcome, describe(targets, obs), w), true
			}
		}
	}
}

// update is a poller report about the target in targets[i].
type update struct {
	i int
	elbv2.Report
}

// follow subscribes to the pod's target in each of its target groups and
// merges the reports into one channel until ctx ends.
func (h *Holder) follow(ctx context.Context, ip string, targets []lbc.Registration) <-chan update {
	updates := make(chan update)
	for i, t := range targets {
		reports, stop := h.Poller.Subscribe(t.TargetGroupARN, elbv2.Target{ID: ip, Port: t.Port})
		go func() {
			defer stop()
			for {
				select {
				case r := <-reports:
					select {
					case updates <- update{i, r}:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return updates
}

// traffic describes the pod's traffic for the helper. A target group whose
// settings cannot be read counts as an ALB's without health checks: its
// checks then delay quiet rather than a request being missed.
func (h *Holder) traffic(ctx context.Context, targets []lbc.Registration) *contract.Traffic {
	settings := make([]targetgroups.Setting, len(targets))
	for i, t := range targets {
		s, err := h.Settings.Setting(ctx, t.TargetGroupARN)
		if err != nil {
			log.FromContext(ctx).Info("target group settings unknown; its health checks will count as traffic", "err", err)
		}
		settings[i] = s
	}
	return targetgroups.Traffic(targets, settings)
}

// bounds collects the limits of a hold. A target group whose delay cannot be
// read leaves the hold bounded by the request and the grace period only.
func (h *Holder) bounds(ctx context.Context, pod *corev1.Pod, targets []lbc.Registration, start, requested time.Time, budget time.Duration) release.Bounds {
	b := release.Bounds{Requested: requested, Margin: h.Margin, TerminationStart: start, Budget: budget}
	if dt := pod.DeletionTimestamp; dt != nil {
		b.Grace = dt.Time
		if g := pod.DeletionGracePeriodSeconds; g != nil {
			// The delays count from when deletion began, which a restarted
			// replica can still work out.
			b.TerminationStart = dt.Add(-time.Duration(*g) * time.Second)
		}
	}
	for _, t := range targets {
		d, err := h.Delays.DeregistrationDelay(ctx, t.TargetGroupARN)
		if err != nil {
			log.FromContext(ctx).Info("deregistration delay unknown; bounding the hold by the request and grace period", "err", err)
			b.MaxDeregistrationDelay = -1
			break
		}
		b.MaxDeregistrationDelay = max(b.MaxDeregistrationDelay, d)
	}
	return b
}

// deregister removes the pod's target from each of its target groups at
// once, so that one slow group does not delay the others' batches.
func (h *Holder) deregister(ctx context.Context, ip string, targets []lbc.Registration) {
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			if err := h.EarlyDeregister.Deregister(ctx, t.TargetGroupARN, elbv2.Target{ID: ip, Port: t.Port}); err != nil {
				log.FromContext(ctx).Info("early deregistration failed; waiting for the load balancer controller", "targetGroup", t.TargetGroupARN, "err", err)
			}
		})
	}
	wg.Wait()
}

// passedReadinessGate reports whether the load balancer controller ever
// marked the pod's target healthy, which tells a deregistered target from
// one never registered when the hold starts after the target left.
func passedReadinessGate(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if strings.HasPrefix(string(c.Type), lbc.ReadinessGatePrefix) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
