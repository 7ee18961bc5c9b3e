package lbc

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// Cache indexes Find reads through, so one admission looks at the few objects
// related to the pod instead of every Service, binding, Ingress and route.
const (
	// IndexSelector indexes Services by each "key=value" of their selector: a
	// Service can select a pod only if the pod has every one of them.
	IndexSelector = "albdrain.io/selector"
	// IndexServiceRef indexes TargetGroupBindings by the Service they bind.
	IndexServiceRef = "albdrain.io/service-ref"
	// IndexBackend indexes Ingresses by the Services they route to.
	IndexBackend = "albdrain.io/backend-service"
	// IndexRouteBackend indexes Gateway API routes by the "namespace/name"
	// of the Services they send to, which may be in another namespace.
	IndexRouteBackend = "albdrain.io/route-backend"
	// IndexTargetRef indexes TargetGroupConfigurations by the name of the
	// object they configure.
	IndexTargetRef = "albdrain.io/target-ref"
)

// Index is one field index Find needs on its Reader's cache.
type Index struct {
	Object  client.Object
	Field   string
	Extract client.IndexerFunc
}

// Indexes lists the field indexes Find uses for the always-served objects
// and for apis.
func Indexes(apis ...API) []Index {
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
	for _, a := range apis {
		idx = append(idx, a.indexes()...)
	}
	return idx
}

func (a API) indexes() []Index {
	switch a {
	case APITargetGroupBinding:
		return []Index{{Object: &TargetGroupBinding{}, Field: IndexServiceRef, Extract: func(o client.Object) []string {
			return []string{o.(*TargetGroupBinding).Spec.ServiceRef.Name}
		}}}
	case APIGateway:
		return []Index{{Object: &TargetGroupConfiguration{}, Field: IndexTargetRef, Extract: func(o client.Object) []string {
			if r := o.(*TargetGroupConfiguration).Spec.TargetReference; r != nil {
				return []string{r.Name}
			}
			return nil
		}}}
	}
	for _, rk := range routeKinds {
		if rk.api == a {
			return []Index{{Object: rk.obj, Field: IndexRouteBackend, Extract: func(o client.Object) []string {
				return rk.of(o).serviceBackends()
			}}}
		}
	}
	return nil
}

// objects are the kinds Find reads for an API, whose informers must run.
func (a API) objects() []client.Object {
	switch a {
	case APITargetGroupBinding:
		return []client.Object{&TargetGroupBinding{}}
	case APIGateway:
		return []client.Object{&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1beta1.ReferenceGrant{},
			&TargetGroupConfiguration{}, &LoadBalancerConfiguration{}}
	}
	for _, rk := range routeKinds {
		if rk.api == a {
			return []client.Object{rk.obj}
		}
	}
	return nil
}

// RegisterIndexes adds the indexes of the always-served objects and of apis
// to a cache; before it starts, or after for an API that appears later.
func RegisterIndexes(ctx context.Context, fi client.FieldIndexer, apis ...API) error {
	for _, i := range Indexes(apis...) {
		if err := fi.IndexField(ctx, i.Object, i.Field, i.Extract); err != nil {
			return fmt.Errorf("index %T by %s: %w", i.Object, i.Field, err)
		}
	}
	return nil
}
