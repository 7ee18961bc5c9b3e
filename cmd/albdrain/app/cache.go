package app

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/albdrain/albdrain/drain/watcher"
	"github.com/albdrain/albdrain/drain/watcher/unheld"
	"github.com/albdrain/albdrain/internal/contract"
)

// CacheOptions are the manager's cache policy, stated here once. Pods: only
// those the webhook marked managed, trimmed (trimPod); caching every pod of a
// large cluster would cost memory for nothing. The watcher, the
// readiness-gate reporter and the CA bundle publisher read pods from this
// cache and rely on it holding managed pods only; explain, which answers
// for any pod, reads pods from the apiserver. Events: only the watcher's
// own, which unheld reads. Every other object is trimmed to what
// lbc.Finder reads (trimCached).
func CacheOptions() cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {
				Label:     labels.SelectorFromSet(labels.Set{contract.ManagedLabel: "true"}),
				Transform: trimPod,
			},
			&eventsv1.Event{}: unheld.EventsByObject(watcher.EventSource),
		},
		DefaultTransform: trimCached,
	}
}

// lastApplied is kubectl's copy of the whole object as last applied, often
// the largest annotation an object has; nothing in the manager reads it.
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

// trimPod is the pod cache's transform: it keeps what the manager reads of
// a managed pod (metadata, status, volumes, readiness gates, the service
// account, and of each container its name, image, ports, restart policy and
// lifecycle) and drops the rest, above all environment variables, commands
// and probes, which make up most of a large pod.
func trimPod(obj any) (any, error) {
	obj, err := cache.TransformStripManagedFields()(obj)
	pod, ok := obj.(*corev1.Pod)
	if !ok || err != nil {
		return obj, err
	}
	delete(pod.Annotations, lastApplied)
	trim := func(cs []corev1.Container) {
		for i, c := range cs {
			cs[i] = corev1.Container{Name: c.Name, Image: c.Image, Ports: c.Ports, RestartPolicy: c.RestartPolicy, Lifecycle: c.Lifecycle}
		}
	}
	trim(pod.Spec.Containers)
	trim(pod.Spec.InitContainers)
	pod.Spec.EphemeralContainers = nil
	pod.Spec.Affinity = nil
	pod.Spec.Tolerations = nil
	pod.Spec.TopologySpreadConstraints = nil
	return pod, nil
}
