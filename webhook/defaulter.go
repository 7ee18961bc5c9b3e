package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
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

// Default implements admission.Defaulter: it acts on eligibility's decision.
func (d *PodDefaulter) Default(ctx context.Context, pod *corev1.Pod) error {
	log := ctrl.LoggerFrom(ctx)
	ns := pod.Namespace
	if req, err := admission.RequestFromContext(ctx); err == nil && req.Namespace != "" {
		ns = req.Namespace
	}
	dec := eligibility.Rules{Finder: d.Finder, Overrides: d.Options.CheckOverrides}.Decide(ctx, ns, pod)
	switch dec.Result {
	case eligibility.ResultError:
		log.Error(dec.Err, "looking up the pod's load balancer backends; admitting it unmutated", "namespace", ns)
	case eligibility.ResultDenied:
		d.count(dec.Result, dec.Reason)
		return fmt.Errorf("albdrain: %w", dec.Err)
	case eligibility.ResultSkipped:
		d.skip(ctx, ns, pod, dec)
	case eligibility.ResultInjected:
		return d.inject(ctx, ns, pod, dec)
	}
	d.count(dec.Result, dec.Reason)
	return nil
}

// skip records why a pod behind a load balancer is left alone.
func (d *PodDefaulter) skip(ctx context.Context, ns string, pod *corev1.Pod, dec eligibility.Decision) {
	if dec.Note == "" {
		return
	}
	log := ctrl.LoggerFrom(ctx)
	if dec.Reason.Unsupported() {
		// On a reinvocation, a mesh injector may have added its proxy since
		// albdrain's first pass: that pass's hold would claim protection the
		// pod does not have.
		if inject.Remove(pod) {
			log.V(1).Info("removed the hold an earlier pass injected", "namespace", ns)
		}
	}
	setAnnotation(pod, contract.SkippedKey, dec.Note)
	log.V(1).Info("pod is behind a load balancer but is not held", "namespace", ns, "reason", dec.Reason, "why", dec.Note)
}

// inject applies the hold to a pod the rules accept.
func (d *PodDefaulter) inject(ctx context.Context, ns string, pod *corev1.Pod, dec eligibility.Decision) error {
	log := ctrl.LoggerFrom(ctx)
	rec, injected, err := inject.Apply(pod, dec.Match.Backends, d.Options)
	// Decide has checked the overrides and the serving ports already; Apply
	// reports both again since it is also used alone, and the answers stay
	// those of the rules.
	if err != nil {
		d.count(eligibility.ResultDenied, eligibility.ReasonInvalidOverride)
		return fmt.Errorf("albdrain: %w", err)
	}
	if !injected {
		d.count(eligibility.ResultSkipped, eligibility.ReasonNoServingPort)
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
	d.count(dec.Result, dec.Reason)
	return nil
}

func (d *PodDefaulter) count(result eligibility.Result, reason eligibility.Reason) {
	if d.Metrics != nil {
		d.Metrics.Mutations.WithLabelValues(string(result), string(reason)).Inc()
	}
}

func setAnnotation(pod *corev1.Pod, k, v string) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[k] = v
}
