package app

import (
	"strings"

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
	"github.com/albdrain/albdrain/internal/lbc"
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

// trimPod is the pod cache's transform. It builds a new pod of what the
// manager reads of a managed pod and nothing else, since at 10,000 managed
// pods every field kept costs its size 10,000 times:
//   - metadata: identity, labels (Service selectors), albdrain's own
//     annotations, creation and deletion;
//   - spec: the service account and albdrain's token volume (the hold
//     endpoint's caller check), readiness gates, and of each app container
//     and native sidecar its name and ports (target ports by name);
//   - status: phase, IPs, the conditions the watcher and the readiness-gate
//     reporter read (ContainersReady, DisruptionTarget, the load balancer
//     controller's gates) without their messages, and of each container's
//     status its name and when it started (unheld).
//
// Dropped, above all: other annotations, environment variables, commands,
// probes, images and preStop hooks, init containers that are not sidecars,
// other volumes, and container statuses' images and IDs.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Labels: pod.Labels, Annotations: ownAnnotations(pod.Annotations),
			CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp, DeletionGracePeriodSeconds: pod.DeletionGracePeriodSeconds,
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: pod.Spec.ServiceAccountName,
			ReadinessGates:     pod.Spec.ReadinessGates,
			Containers:         trimContainers(pod.Spec.Containers, false),
			InitContainers:     trimContainers(pod.Spec.InitContainers, true),
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase, PodIP: pod.Status.PodIP, PodIPs: pod.Status.PodIPs},
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == contract.TrustVolumeName {
			out.Spec.Volumes = []corev1.Volume{v}
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.ContainersReady || c.Type == corev1.DisruptionTarget || strings.HasPrefix(string(c.Type), lbc.ReadinessGatePrefix) {
			out.Status.Conditions = append(out.Status.Conditions, corev1.PodCondition{Type: c.Type, Status: c.Status, Reason: c.Reason, LastTransitionTime: c.LastTransitionTime})
		}
	}
	for _, s := range pod.Status.ContainerStatuses {
		st := corev1.ContainerStatus{Name: s.Name}
		if r := s.State.Running; r != nil {
			st.State.Running = &corev1.ContainerStateRunning{StartedAt: r.StartedAt}
		}
		if t := s.State.Terminated; t != nil {
			st.State.Terminated = &corev1.ContainerStateTerminated{StartedAt: t.StartedAt}
		}
		out.Status.ContainerStatuses = append(out.Status.ContainerStatuses, st)
	}
	return out, nil
}

// trimContainers keeps each container's name and ports; of init containers
// (sidecars true), only native sidecars, with their restart policy.
func trimContainers(cs []corev1.Container, sidecars bool) []corev1.Container {
	var out []corev1.Container
	for _, c := range cs {
		if sidecars && !lbc.IsSidecar(c) {
			continue
		}
		out = append(out, corev1.Container{Name: c.Name, Ports: c.Ports, RestartPolicy: c.RestartPolicy})
	}
	return out
}

// ownAnnotations are albdrain's annotations of a, the only ones the
// manager reads of a pod.
func ownAnnotations(a map[string]string) map[string]string {
	var out map[string]string
	for k, v := range a {
		if strings.HasPrefix(k, contract.AnnotationPrefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
