package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/albdrain/albdrain/webhook/backends"
	"github.com/albdrain/albdrain/webhook/elbv2api"
)

// Setup registers the pod mutation on the manager's webhook server and
// starts the informers it reads, so the first admission finds a warm cache.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg Config) error {
	opts, err := cfg.Options()
	if err != nil {
		return err
	}
	tgb, err := hasTargetGroupBindings(mgr.GetRESTMapper())
	if err != nil {
		return err
	}
	ctrl.LoggerFrom(ctx).Info("admission webhook", "targetGroupBindingCRD", tgb, "mode", opts.Mode)
	objs := []client.Object{&corev1.Service{}, &networkingv1.Ingress{}, &networkingv1.IngressClass{}}
	if tgb {
		objs = append(objs, &elbv2api.TargetGroupBinding{})
	}
	if err := backends.RegisterIndexes(ctx, mgr.GetFieldIndexer(), tgb); err != nil {
		return err
	}
	for _, o := range objs {
		if _, err := mgr.GetCache().GetInformer(ctx, o); err != nil {
			return fmt.Errorf("informer for %T: %w", o, err)
		}
	}
	d := &PodDefaulter{
		Finder:  &backends.Finder{Reader: mgr.GetClient(), TargetGroupBindings: tgb},
		Options: opts,
		Metrics: NewMetrics(metrics.Registry),
	}
	mgr.GetWebhookServer().Register(Path, admission.WithDefaulter[*corev1.Pod](mgr.GetScheme(), d))
	return nil
}

// hasTargetGroupBindings reports whether the cluster serves the
// TargetGroupBinding CRD; without it only Ingresses are consulted.
func hasTargetGroupBindings(m meta.RESTMapper) (bool, error) {
	gk := schema.GroupKind{Group: elbv2api.GroupVersion.Group, Kind: "TargetGroupBinding"}
	_, err := m.RESTMapping(gk, elbv2api.GroupVersion.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	default:
		return false, fmt.Errorf("discover TargetGroupBinding: %w", err)
	}
}
