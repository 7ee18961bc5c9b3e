package lbc

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// albClassSet is which IngressClasses belong to the load balancer controller.
type albClassSet struct {
	names map[string]bool
	// defaultALB is true when the cluster's default class is an ALB class.
	defaultALB bool
}

func (f *Finder) albClasses(ctx context.Context) (albClassSet, error) {
	var list networkingv1.IngressClassList
	if err := f.Reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return albClassSet{}, fmt.Errorf("list ingressclasses: %w", err)
	}
	set := albClassSet{names: map[string]bool{}}
	for _, c := range list.Items {
		if c.Spec.Controller != ALBController {
			continue
		}
		set.names[c.Name] = true
		if c.Annotations[DefaultClassAnnotation] == "true" {
			set.defaultALB = true
		}
	}
	return set, nil
}

// isALB reports whether the load balancer controller serves ing: by class
// name, by the legacy annotation, or as the default class.
func (s albClassSet) isALB(ing *networkingv1.Ingress) bool {
	if ing.Spec.IngressClassName != nil {
		return s.names[*ing.Spec.IngressClassName]
	}
	if v, ok := ing.Annotations[LegacyClassAnnotation]; ok {
		return v == "alb"
	}
	return s.defaultALB
}
