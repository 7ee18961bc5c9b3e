package eligibility

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// mesh is a service mesh whose classic sidecar albdrain cannot hold yet, and
// the marks its injector leaves on a pod.
type mesh struct {
	name        string
	annotation  string
	proxy, init string
}

// meshes are told apart by what their injectors add, since an injector may
// run before albdrain's webhook (its marks are then in the pod) or after it
// (they are then there on albdrain's reinvocation).
var meshes = []mesh{
	{name: "Istio", annotation: "sidecar.istio.io/status", proxy: "istio-proxy", init: "istio-init"},
	{name: "Linkerd", annotation: "linkerd.io/proxy-version", proxy: "linkerd-proxy", init: "linkerd-init"},
}

// meshOf names the mesh whose sidecar proxy is in pod, or "" when none is.
// A pod that only asks for injection (sidecar.istio.io/inject) is not yet
// meshed: the reinvocation after the mesh's injector finds the proxy.
func meshOf(pod *corev1.Pod) string {
	named := func(cs []corev1.Container, name string) bool {
		return slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	}
	for _, m := range meshes {
		if _, ok := pod.Annotations[m.annotation]; ok ||
			named(pod.Spec.Containers, m.proxy) || named(pod.Spec.InitContainers, m.proxy) || named(pod.Spec.InitContainers, m.init) {
			return m.name
		}
	}
	return ""
}
