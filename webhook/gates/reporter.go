package gates

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// EventSource is the reporting controller of the reporter's events.
const EventSource = "albdrain-readiness-gates"

// ReasonGateUnset is the reason of the Warning event on a reported pod.
const ReasonGateUnset = "ReadinessGateUnset"

// Reporter watches the pods the webhook marked and reports, once per pod
// and episode, those an injected readiness gate has kept NotReady for
// longer than After. It reads pods and writes events only.
type Reporter struct {
	// Pods reads pods: the manager's cache. The reporter relies on the
	// manager's cache policy (package app) holding managed pods only, so
	// it reconciles no other pod.
	Pods client.Reader
	// Recorder records the Warning events.
	Recorder events.EventRecorder
	Metrics  *Metrics
	// After is the bound.
	After time.Duration

	mu sync.Mutex
	// reported holds the pods counted in the gauge, with the UID warned
	// about, so a pod recreated under the same name is warned about anew.
	reported map[types.NamespacedName]types.UID
}

// Setup adds the reporter to mgr, unless cfg turns it off. It watches the
// pods of the manager's cache, which must hold managed pods only; m is the
// reporter's gauge, which the manager registers.
func Setup(mgr ctrl.Manager, cfg Config, m *Metrics) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.ReportAfter == 0 {
		return nil
	}
	r := &Reporter{
		Pods:     mgr.GetClient(),
		Recorder: mgr.GetEventRecorder(EventSource),
		Metrics:  m,
		After:    cfg.ReportAfter,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("readiness-gates").
		// Each replica reports.
		For(&corev1.Pod{}).
		Complete(r)
}

// Reconcile reports the pod once its gates have been unset for After, and
// otherwise asks to be called again when the bound would be reached; a
// change to the pod (its gate set, say) calls it earlier.
func (r *Reporter) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var pod corev1.Pod
	if err := r.Pods.Get(ctx, req.NamespacedName, &pod); err != nil {
		if apierrors.IsNotFound(err) {
			r.clear(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	unset, since := Blocking(&pod)
	if len(unset) == 0 {
		r.clear(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if wait := time.Until(since.Add(r.After)); wait > 0 {
		r.clear(req.NamespacedName)
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if r.report(req.NamespacedName, pod.UID) {
		note := "Readiness gate not True for " + time.Since(since).Round(time.Second).String() +
			" after the containers became ready: " + describe(unset) +
			"; the pod stays NotReady until a load balancer controller sets it (opt out with albdrain.io/readiness-gate=disabled)"
		r.Recorder.Eventf(&pod, nil, corev1.EventTypeWarning, ReasonGateUnset, "ReportReadinessGate", "%s", note)
		log.FromContext(ctx).Info("readiness gate keeps the pod NotReady", "gates", describe(unset), "since", since)
	}
	return ctrl.Result{}, nil
}

// report counts the pod and says whether it is to be warned about: the
// first time, or when it is another pod of the same name.
func (r *Reporter) report(key types.NamespacedName, uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reported == nil {
		r.reported = map[types.NamespacedName]types.UID{}
	}
	prev, ok := r.reported[key]
	if !ok {
		r.Metrics.Unset.Inc()
	}
	r.reported[key] = uid
	return !ok || prev != uid
}

func (r *Reporter) clear(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.reported[key]; ok {
		delete(r.reported, key)
		r.Metrics.Unset.Dec()
	}
}
