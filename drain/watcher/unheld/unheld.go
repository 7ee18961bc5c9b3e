// Package unheld reports managed pods that terminated without their helper
// ever reaching the watcher. The helper's own trace is stderr of a preStop
// hook that succeeded, which the kubelet discards; a helper that cannot reach
// the watcher (egress denied, cluster DNS down, a CA it does not trust) falls
// back to a fixed sleep and nothing else shows it. Every hold the watcher
// answers leaves an event on the pod from EventSource, on whichever replica
// served it, so a wait-mode pod whose held containers ran and that is gone
// with no such event was never held: it is counted, and gets a Warning event.
package unheld

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/internal/contract"
)

// regardingUID indexes the cached events by the UID of their object.
const regardingUID = "regarding.uid"

// DefaultSettle is how long after a pod's deletion its events are looked
// for: the watcher's events are written asynchronously.
const DefaultSettle = 30 * time.Second

// EventsByObject is the manager cache setting for the events the reporter
// reads: only those the watcher (reporting controller source) records. Put
// it in cache.Options.ByObject under &eventsv1.Event{}.
func EventsByObject(source string) cache.ByObject {
	return cache.ByObject{
		Field: fields.OneTermEqualSelector("reportingController", source),
		Transform: func(o any) (any, error) {
			if e, ok := o.(*eventsv1.Event); ok {
				// Only whom each event is about is read; a busy cluster
				// keeps an hour of them (the apiserver's event TTL).
				*e = eventsv1.Event{
					ObjectMeta: metav1.ObjectMeta{Name: e.Name, Namespace: e.Namespace, UID: e.UID, ResourceVersion: e.ResourceVersion},
					Regarding:  corev1.ObjectReference{UID: e.Regarding.UID},
				}
			}
			return o, nil
		},
	}
}

// Reporter counts and reports managed pods deleted without a hold.
type Reporter struct {
	// Events reads the watcher's events (the manager's cache, EventsByObject).
	Events   client.Reader
	Recorder events.EventRecorder
	Metrics  *metrics.Metrics
	// Settle defaults to DefaultSettle.
	Settle time.Duration
	// After schedules f after d; time.AfterFunc unless a test sets it.
	After func(d time.Duration, f func())
}

// Setup indexes the watcher's events by pod and watches the managed pods'
// deletions. The manager's cache must hold events as EventsByObject says.
func (r *Reporter) Setup(ctx context.Context, mgr ctrl.Manager) error {
	if r.Settle <= 0 {
		r.Settle = DefaultSettle
	}
	if r.After == nil {
		r.After = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	err := mgr.GetFieldIndexer().IndexField(ctx, &eventsv1.Event{}, regardingUID, func(o client.Object) []string {
		return []string{string(o.(*eventsv1.Event).Regarding.UID)}
	})
	if err != nil {
		return fmt.Errorf("index the watcher's events: %w", err)
	}
	pods, err := mgr.GetCache().GetInformer(ctx, &corev1.Pod{}, cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	logger := mgr.GetLogger().WithName("unheld")
	_, err = pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		pod, ok := obj.(*corev1.Pod)
		if !ok || !Expected(pod) {
			return
		}
		r.After(r.Settle, func() { r.check(ctrl.LoggerInto(context.Background(), logger), pod) })
	}})
	return err
}

// Expected says whether the watcher should have heard from pod's helper:
// a wait-mode pod, deleted through the API, one of whose held containers
// ran (a preStop hook runs only in a started container).
func Expected(pod *corev1.Pod) bool {
	rec := contract.ParseRecord(pod.Annotations)
	if rec == nil || rec.Mode != string(contract.ModeWait) || pod.DeletionTimestamp == nil {
		return false
	}
	held := map[string]bool{}
	for _, c := range rec.Containers {
		held[c] = true
	}
	for _, s := range pod.Status.ContainerStatuses {
		if !held[s.Name] {
			continue
		}
		if s.State.Running != nil || (s.State.Terminated != nil && !s.State.Terminated.StartedAt.IsZero()) {
			return true
		}
	}
	return false
}

// check counts and reports pod when no watcher event is about it.
func (r *Reporter) check(ctx context.Context, pod *corev1.Pod) {
	var list eventsv1.EventList
	if err := r.Events.List(ctx, &list, client.MatchingFields{regardingUID: string(pod.UID)}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing the watcher's events", "pod", klog.KObj(pod))
		return
	}
	if len(list.Items) > 0 {
		return
	}
	r.Metrics.PodsNeverHeld.Inc()
	ctrl.LoggerFrom(ctx).Info("a managed pod terminated without its helper reaching the watcher", "pod", klog.KObj(pod))
	r.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, contract.ReasonHoldNeverAsked, "Hold",
		"The pod terminated without its albdrain helper reaching the watcher: it held for the fixed fallback sleep, not until the load balancer was done. "+
			"Check that the pod can reach albdrain's hold endpoint (egress NetworkPolicy, security groups, cluster DNS, the albdrain-ca.crt trust bundle).")
}
