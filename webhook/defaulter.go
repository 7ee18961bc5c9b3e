package webhook

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/webhook/inject"
)

// PodDefaulter injects drain protection into pods created behind ALB ip
// target groups. It never fails a pod for albdrain's own trouble: a lookup
// error lets the pod through unmutated; only the pod's own invalid
// annotations deny it.
type PodDefaulter struct {
	Finder  *lbc.Finder
	Options inject.Options
	Metrics *Metrics
}

var _ admission.Defaulter[*corev1.Pod] = (*PodDefaulter)(nil)

// Default implements admission.Defaulter.
func (d *PodDefaulter) Default(ctx context.Context, pod *corev1.Pod) error {
	log := ctrl.LoggerFrom(ctx)
	ns := pod.Namespace
	if req, err := admission.RequestFromContext(ctx); err == nil && req.Namespace != "" {
		ns = req.Namespace
	}
	if strings.EqualFold(pod.Annotations[contract.InjectKey], "disabled") {
		d.count(ResultSkipped, ReasonOptedOut)
		return nil
	}
	// The apiserver's namespaceSelector should already keep these out; this
	// guards a misconfigured selector from touching the control plane.
	if ns == "kube-system" {
		d.count(ResultSkipped, ReasonSystemNamespace)
		return nil
	}
	found, err := d.Finder.Find(ctx, ns, pod)
	if err != nil {
		log.Error(err, "looking up the pod's load balancer backends; admitting it unmutated", "namespace", ns)
		d.count(ResultError, ReasonLookupFailed)
		return nil
	}
	if len(found.Backends) == 0 {
		reason := ReasonNoBackend
		if len(found.Skipped) > 0 {
			reason = ReasonNotIPTarget
			setAnnotation(pod, contract.SkippedKey, strings.Join(found.Skipped, "; "))
			log.V(1).Info("pod is behind a load balancer but not as an ip target", "namespace", ns, "reasons", found.Skipped)
		}
		d.count(ResultSkipped, reason)
		return nil
	}
	if reason, why := Unsupported(pod); reason != "" {
		// On a reinvocation, a mesh injector may have added its proxy since
		// albdrain's first pass: that pass's hold would claim protection the
		// pod does not have.
		if inject.Remove(pod) {
			log.V(1).Info("removed the hold an earlier pass injected", "namespace", ns)
		}
		setAnnotation(pod, contract.SkippedKey, why)
		log.V(1).Info("pod is behind a load balancer but cannot be held", "namespace", ns, "reason", why)
		d.count(ResultSkipped, reason)
		return nil
	}
	rec, injected, err := inject.Apply(pod, found.Backends, d.Options)
	if err != nil {
		d.count(ResultDenied, ReasonInvalidOverride)
		return fmt.Errorf("albdrain: %w", err)
	}
	if !injected {
		d.count(ResultSkipped, ReasonNoServingPort)
		return nil
	}
	log.V(1).Info("injected drain hold", "namespace", ns, "mode", rec.Mode, "containers", rec.Containers,
		"services", rec.Services, "targetGroupBindings", rec.TargetGroupBindings, "ingresses", rec.Ingresses)
	if len(rec.ReadinessGatesSkipped) > 0 {
		// Recorded in the pod's injected annotation too.
		log.V(1).Info("left out readiness gates that no load balancer controller may set", "namespace", ns, "reasons", rec.ReadinessGatesSkipped)
		if d.Metrics != nil {
			d.Metrics.GatesSkipped.Add(float64(len(rec.ReadinessGatesSkipped)))
		}
	}
	d.count(ResultInjected, ReasonBehindALB)
	return nil
}

func (d *PodDefaulter) count(result, reason string) {
	if d.Metrics != nil {
		d.Metrics.Mutations.WithLabelValues(result, reason).Inc()
	}
}

func setAnnotation(pod *corev1.Pod, k, v string) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[k] = v
}
