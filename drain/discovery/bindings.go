package discovery

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/webhook/backends"
	"github.com/albdrain/albdrain/webhook/elbv2api"
)

// Bindings resolves targets through the load balancer controller's
// TargetGroupBindings: a binding's Service port, if the Service selects the
// pod, leads to the pod port registered in the binding's target group.
type Bindings struct {
	// Client reads TargetGroupBindings and Services, normally from the
	// manager's cache.
	Client client.Reader
}

// Targets implements Resolver.
func (b Bindings) Targets(ctx context.Context, pod *corev1.Pod) ([]Target, error) {
	var tgbs elbv2api.TargetGroupBindingList
	if err := b.Client.List(ctx, &tgbs, client.InNamespace(pod.Namespace)); err != nil {
		return nil, fmt.Errorf("list TargetGroupBindings: %w", err)
	}
	var out []Target
	for _, tgb := range tgbs.Items {
		if tgb.Spec.TargetType != nil && *tgb.Spec.TargetType != elbv2api.TargetTypeIP {
			continue // instance targets are nodes; the pod's IP is not registered
		}
		var svc corev1.Service
		err := b.Client.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: tgb.Spec.ServiceRef.Name}, &svc)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get Service %s of TargetGroupBinding %s: %w", tgb.Spec.ServiceRef.Name, tgb.Name, err)
		}
		if !backends.Selects(&svc, pod) {
			continue
		}
		sp, ok := backends.ServicePort(&svc, tgb.Spec.ServiceRef.Port)
		if !ok {
			log.FromContext(ctx).Info("TargetGroupBinding names a port its Service lacks", "targetGroupBinding", tgb.Name, "port", tgb.Spec.ServiceRef.Port.String())
			continue
		}
		port, ok := podPort(pod, sp)
		if !ok {
			continue
		}
		out = append(out, Target{TargetGroupARN: tgb.Spec.TargetGroupARN, Port: port})
	}
	return out, nil
}
