package hold

import (
	"context"
	"fmt"
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
	seen := signalNote(end.Signal)
	ev := EndEvent{Outcome: end.Outcome, Type: corev1.EventTypeNormal, Reason: contract.ReasonHoldReleased, Action: "Release",
		Note: fmt.Sprintf("Released after %s (quiet): no load-balancer traffic for %s%s", took.Round(time.Second), quiet, seen)}
	if end.Outcome != contract.OutcomeQuiet {
		ev.Type, ev.Reason = corev1.EventTypeWarning, contract.ReasonHoldBounded
		ev.Note = fmt.Sprintf("Released after %s (bound): load-balancer traffic went on until the hold's bound, never quiet for %s%s", took.Round(time.Second), quiet, seen)
	}
	h.recordEnd(ctx, pod, ev, took, "pod", pod.Namespace+"/"+pod.Name, "after", took.String(), "quietPeriod", quiet.String(), "signal", end.Signal, "awaited", awaited)
}

// claimTimeout bounds the write that claims a hold's end: the helper's
// answer waits for it.
const claimTimeout = 2 * time.Second

// recordEnd counts a hold's outcome and records its end event, unless this
// replica, or with Ends any replica, has already recorded the pod's.
// kv are the log's key/value pairs.
func (h *Holder) recordEnd(ctx context.Context, pod *corev1.Pod, ev EndEvent, took time.Duration, kv ...any) {
	logger := log.FromContext(ctx).WithValues(append([]any{"outcome", ev.Outcome}, kv...)...)
	if !h.counted.first(pod.UID, time.Now()) {
		logger.Info("hold ended again; its first outcome is the one counted")
		return
	}
	if h.Ends != nil {
		// The helper may have left: the end is recorded all the same.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
		first, err := h.Ends.Claim(cctx, pod, ev)
		cancel()
		switch {
		case err == nil && !first:
			logger.Info("hold ended; another replica has counted its outcome")
			return
		case err == nil:
			h.Metrics.ObserveHold(ev.Outcome, took)
			logger.Info("hold ended")
			return
		}
		// Counted here all the same: a hold is rather counted twice than
		// missed while the apiserver cannot be written.
		logger.Error(err, "recording the hold's end event; counting its outcome on this replica, which another replica may count too")
	}
	h.Metrics.ObserveHold(ev.Outcome, took)
	logger.Info("hold ended")
	h.Recorder.Eventf(pod, nil, ev.Type, ev.Reason, ev.Action, "%s", ev.Note)
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
