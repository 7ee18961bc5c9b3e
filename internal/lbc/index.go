package lbc

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Cache indexes Find reads through, so one admission looks at the few objects
// related to the pod instead of every Service, binding and Ingress of its
// namespace.
const (
	// IndexSelector indexes Services by each "key=value" of their selector: a
	// Service can select a pod only if the pod has every one of them.
	IndexSelector = "albdrain.io/selector"
	// IndexServiceRef indexes TargetGroupBindings by the Service they bind.
	IndexServiceRef = "albdrain.io/service-ref"
	// IndexBackend indexes Ingresses by the Services they route to.
	IndexBackend = "albdrain.io/backend-service"
)

// Index is one field index Find needs on its Reader's cache.
type Index struct {
	Object  client.Object
	Field   string
	Extract client.IndexerFunc
}

// Indexes lists the field indexes Find uses; withBindings adds the
// TargetGroupBinding one, which needs the CRD to be served.
func Indexes(withBindings bool) []Index {
	idx := []Index{
		{Object: &corev1.Service{}, Field: IndexSelector, Extract: func(o client.Object) []string {
			var out []string
			for k, v := range o.(*corev1.Service).Spec.Selector {
				out = append(out, k+"="+v)
			}
			return out
		}},
		{Object: &networkingv1.Ingress{}, Field: IndexBackend, Extract: func(o client.Object) []string {
			var out []string
			for _, b := range ingressBackends(o.(*networkingv1.Ingress)) {
				out = appendNew(out, b.Name)
			}
			return out
		}},
	}
	if withBindings {
		idx = append(idx, Index{Object: &TargetGroupBinding{}, Field: IndexServiceRef, Extract: func(o client.Object) []string {
			return []string{o.(*TargetGroupBinding).Spec.ServiceRef.Name}
		}})
	}
	return idx
}

// RegisterIndexes adds the indexes to a cache before it starts.
func RegisterIndexes(ctx context.Context, fi client.FieldIndexer, withBindings bool) error {
	for _, i := range Indexes(withBindings) {
		if err := fi.IndexField(ctx, i.Object, i.Field, i.Extract); err != nil {
			return fmt.Errorf("index %T by %s: %w", i.Object, i.Field, err)
		}
	}
	return nil
}
