package eligibility

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// osLabel is the node label the kubelet sets to its operating system.
const osLabel = "kubernetes.io/os"

// Unsupported returns the reason and the recorded explanation when a pod
// cannot take albdrain's hold whatever is in front of it, or "" when it can.
// It is the decision's step for the pod's kind, also asked alone of a pod
// that already carries a hold: an earlier albdrain may have held a pod it
// now knows it cannot protect.
func Unsupported(pod *corev1.Pod) (reason Reason, why string) {
	switch {
	case isWindows(&pod.Spec):
		// The helper's securityContext has Linux-only fields: the apiserver
		// would reject the mutated pod after the webhook answered, and
		// failurePolicy Ignore would not save it.
		return ReasonWindows, "Windows pod: albdrain's helper runs on Linux only"
	case pod.Spec.HostNetwork:
		// The pod's IP is the node's: neither the hold caller's address nor
		// the sockets the helper watches are the pod's own, and the helper
		// could not resolve the watcher through cluster DNS.
		return ReasonHostNetwork, "hostNetwork pod: its address and sockets are the node's"
	}
	if m := meshOf(pod); m != "" {
		// The proxy takes the load balancer's connections and reaches the
		// app from loopback, so the helper would see no traffic and release
		// at once; the proxy itself is not held and gets SIGTERM first; and
		// the helper's own call to the watcher may go through it.
		return ReasonServiceMesh, m + " sidecar proxy: albdrain cannot hold a meshed pod yet (the proxy takes the load balancer's traffic and is not held)"
	}
	return "", ""
}

// Unsupported reports whether r is one of Unsupported's reasons: the pod's
// kind, not what is in front of it, keeps albdrain from holding it.
func (r Reason) Unsupported() bool {
	return r == ReasonWindows || r == ReasonHostNetwork || r == ReasonServiceMesh
}

// isWindows reports whether the pod can only run on Windows nodes: by
// spec.os, by node selector, or because every required node affinity term
// asks for Windows.
func isWindows(spec *corev1.PodSpec) bool {
	if spec.OS != nil {
		return spec.OS.Name == corev1.Windows
	}
	if spec.NodeSelector[osLabel] == string(corev1.Windows) {
		return true
	}
	a := spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	// Terms are alternatives: the pod is Windows-only when each one is.
	return len(terms) > 0 && !slices.ContainsFunc(terms, func(t corev1.NodeSelectorTerm) bool {
		return !slices.ContainsFunc(t.MatchExpressions, func(e corev1.NodeSelectorRequirement) bool {
			return e.Key == osLabel && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) > 0 &&
				!slices.ContainsFunc(e.Values, func(v string) bool { return v != string(corev1.Windows) })
		})
	})
}
