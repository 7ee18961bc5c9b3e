package app

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// lastApplied is kubectl's copy of the whole object as last applied;
// nothing in the manager reads it.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimCached is the cache's default transform. The manager caches every
// Service, Ingress, TargetGroupBinding and Gateway API object of the
// cluster to find pods' load balancers: it keeps of each what lbc.Finder
// reads, and drops managedFields, kubectl's last-applied copy and the
// status the load balancer controller writes (TargetGroupBindings keep
// theirs: their observedGeneration is read).
func trimCached(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			delete(a, lastApplied)
		}
	}
	switch o := obj.(type) {
	case *corev1.Service:
		o.Spec = corev1.ServiceSpec{Selector: o.Spec.Selector, Ports: o.Spec.Ports, Type: o.Spec.Type, LoadBalancerClass: o.Spec.LoadBalancerClass}
		o.Status = corev1.ServiceStatus{}
	case *networkingv1.Ingress:
		o.Status = networkingv1.IngressStatus{}
	case *gwv1.Gateway:
		o.Status = gwv1.GatewayStatus{}
	case *gwv1.HTTPRoute:
		o.Status = gwv1.HTTPRouteStatus{}
	case *gwv1.GRPCRoute:
		o.Status = gwv1.GRPCRouteStatus{}
	case *gwv1.TCPRoute:
		o.Status = gwv1.TCPRouteStatus{}
	case *gwv1.TLSRoute:
		o.Status = gwv1.TLSRouteStatus{}
	case *gwv1.UDPRoute:
		o.Status = gwv1.UDPRouteStatus{}
	}
	return obj, nil
}
