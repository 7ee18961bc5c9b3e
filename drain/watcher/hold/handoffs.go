package hold

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// defaultEndReportSlack is how long after a hold's bound the helper's
// report may still come: it reports after its quiet period, which it sizes
// first (a few seconds), within a 2 s timeout.
const defaultEndReportSlack = time.Minute

// pendingHandoffs are the holds this replica handed to helpers
// (contract.Handoff) whose end the helper has not reported yet, each until
// its bound and the report's slack have passed: a report lost on the pod's
// way out (the watcher unreachable, the pod killed) would otherwise leave
// the hold in no outcome at all, so it is counted unreported. They live in
// this replica only: a restart forgets them.
type pendingHandoffs struct {
	mu      sync.Mutex
	pending map[types.UID]*time.Timer
}

// await starts waiting for pod's end report; after within, it counts the
// hand-off in unreported and logs it. A retried hold's later hand-off
// replaces the earlier one.
func (p *pendingHandoffs) await(ctx context.Context, pod *corev1.Pod, within time.Duration, unreported prometheus.Counter) {
	logger := log.FromContext(context.WithoutCancel(ctx))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending == nil {
		p.pending = map[types.UID]*time.Timer{}
	}
	if old := p.pending[pod.UID]; old != nil {
		old.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(within, func() {
		p.mu.Lock()
		mine := p.pending[pod.UID] == t
		if mine {
			delete(p.pending, pod.UID)
		}
		p.mu.Unlock()
		if mine {
			unreported.Inc()
			logger.Info("the helper never reported how the hold ended", "pod", klog.KObj(pod), "waited", within.String())
		}
	})
	p.pending[pod.UID] = t
}

// ended stops waiting for uid's report, and says whether it was awaited
// (false: late, after it was counted unreported, or from another replica's
// hand-off).
func (p *pendingHandoffs) ended(uid types.UID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.pending[uid]
	if t == nil {
		return false
	}
	t.Stop()
	delete(p.pending, uid)
	return true
}

// endReportSlack is EndReportSlack or its default.
func (h *Holder) endReportSlack() time.Duration {
	if h.EndReportSlack > 0 {
		return h.EndReportSlack
	}
	return defaultEndReportSlack
}
