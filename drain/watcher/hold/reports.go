package hold

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// defaultEndReportSlack is how long after a hold's bound the helper's
// report may still come: it reports after its quiet period, which it sizes
// first (a few seconds), within a 2 s timeout.
const defaultEndReportSlack = time.Minute

// endReports are the holds handed to helpers whose end has not been
// reported yet: a report lost on the pod's way out (the watcher unreachable,
// the pod killed) would otherwise leave the hold in no outcome at all.
// They live in this replica only: a restart forgets them.
type endReports struct {
	mu      sync.Mutex
	pending map[types.UID]*time.Timer
}

// expectEnd starts waiting for pod's end report, for bound and the slack.
func (h *Holder) expectEnd(ctx context.Context, pod *corev1.Pod, bound time.Duration) {
	slack := h.EndReportSlack
	if slack <= 0 {
		slack = defaultEndReportSlack
	}
	logger := log.FromContext(context.WithoutCancel(ctx))
	r := &h.reports
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[types.UID]*time.Timer{}
	}
	if old := r.pending[pod.UID]; old != nil {
		old.Stop() // a retried hold: the later answer's bound counts
	}
	var t *time.Timer
	t = time.AfterFunc(bound+slack, func() {
		r.mu.Lock()
		mine := r.pending[pod.UID] == t
		if mine {
			delete(r.pending, pod.UID)
		}
		r.mu.Unlock()
		if mine {
			h.Metrics.HoldEndsUnreported.Inc()
			logger.Info("the helper never reported how the hold ended", "pod", klog.KObj(pod), "waited", (bound + slack).String())
		}
	})
	r.pending[pod.UID] = t
}

// endReported stops waiting for uid's report, and says whether it was
// awaited (false: late, after it was counted unreported, or from another
// replica's hold).
func (h *Holder) endReported(uid types.UID) bool {
	r := &h.reports
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.pending[uid]
	if t == nil {
		return false
	}
	t.Stop()
	delete(r.pending, uid)
	return true
}
