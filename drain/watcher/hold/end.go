package hold

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/internal/contract"
)

// End records how the helper ended a hold handed to it (a
// contract.Handoff): the outcome's metrics and an event. The endpoint has
// checked end.
func (h *Holder) End(ctx context.Context, pod *corev1.Pod, end contract.HoldEnd) {
	took, quiet := end.Held(), end.QuietPeriod()
	awaited := h.handoffs.ended(pod.UID)
	if !h.counted.first(pod.UID, time.Now()) {
		log.FromContext(ctx).Info("hold end reported again; its first outcome is the one counted", "pod", pod.Namespace+"/"+pod.Name, "outcome", end.Outcome)
		return
	}
	h.Metrics.ObserveHold(end.Outcome, took)
	log.FromContext(ctx).Info("hold ended", "pod", pod.Namespace+"/"+pod.Name, "outcome", end.Outcome, "after", took.String(), "quietPeriod", quiet.String(), "signal", end.Signal,
		"awaited", awaited)
	seen := signalNote(end.Signal)
	if end.Outcome == contract.OutcomeQuiet {
		h.Recorder.Eventf(pod, nil, corev1.EventTypeNormal, contract.ReasonHoldReleased, "Release",
			"Released after %s (quiet): no load-balancer traffic for %s%s", took.Round(time.Second), quiet, seen)
		return
	}
	h.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, contract.ReasonHoldBounded, "Release",
		"Released after %s (bound): load-balancer traffic went on until the hold's bound, never quiet for %s%s", took.Round(time.Second), quiet, seen)
}

// signalNote says how the helper saw the traffic, for events.
func signalNote(signal string) string {
	switch signal {
	case contract.SignalSockDiag:
		return ", seen through sock_diag"
	case contract.SignalProcNet:
		return ", seen through /proc/net/tcp (sock_diag unavailable: only new connections were visible)"
	default:
		return "; no socket table was readable, so the quiet period was skipped"
	}
}
