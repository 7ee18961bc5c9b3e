package lbc

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NewFinder registers the Finder's indexes and informers with mgr's cache
// and returns a Finder reading through it, for both the webhook and the
// watcher. Call it once per manager, before the manager starts: the cache
// then syncs these objects before any webhook or hold is served.
func NewFinder(ctx context.Context, mgr ctrl.Manager) (*Finder, error) {
	if err := AddToScheme(mgr.GetScheme()); err != nil {
		return nil, err
	}
	tgb, err := servesTargetGroupBindings(mgr.GetRESTMapper())
	if err != nil {
		return nil, err
	}
	if err := RegisterIndexes(ctx, mgr.GetFieldIndexer(), tgb); err != nil {
		return nil, err
	}
	objs := []client.Object{&corev1.Service{}, &networkingv1.Ingress{}, &networkingv1.IngressClass{}}
	if tgb {
		objs = append(objs, &TargetGroupBinding{})
	}
	for _, o := range objs {
		if _, err := mgr.GetCache().GetInformer(ctx, o); err != nil {
			return nil, fmt.Errorf("informer for %T: %w", o, err)
		}
	}
	ctrl.LoggerFrom(ctx).Info("load balancer controller objects", "targetGroupBindingCRD", tgb)
	return &Finder{Reader: mgr.GetClient(), TargetGroupBindings: tgb}, nil
}

// servesTargetGroupBindings reports whether the cluster serves the
// TargetGroupBinding CRD; without it only Ingresses are consulted.
func servesTargetGroupBindings(m meta.RESTMapper) (bool, error) {
	gk := schema.GroupKind{Group: GroupVersion.Group, Kind: "TargetGroupBinding"}
	_, err := m.RESTMapping(gk, GroupVersion.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	default:
		return false, fmt.Errorf("discover TargetGroupBinding: %w", err)
	}
}
