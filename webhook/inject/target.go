package inject

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Target is one load balancer backend a pod serves: a Service port whose
// endpoints an ip target group registers.
type Target struct {
	// Service is the name of the Service selecting the pod.
	Service string
	// TargetPort is the Service port's targetPort: a container port number or name.
	TargetPort intstr.IntOrString
	// TargetGroupBinding names the binding that registers the Service, when one does.
	TargetGroupBinding string
	// Ingress names the ALB Ingress that routes to the Service, when one does.
	Ingress string
}

// holdPlan is which containers hold and on which port numbers the pod serves.
type holdPlan struct {
	containers []string
	ports      []int32
	// matched lists the targets some container of the pod really serves.
	matched []Target
}

// planHolds finds the containers serving the targets. A numeric target port
// that no container declares still reaches the pod (declaring ports is
// optional), so every app container holds; a named one only exists where it
// is declared. A port served by a native sidecar holds the app containers too,
// since the sidecar outlives them and the hold must keep the app serving behind it.
func planHolds(spec *corev1.PodSpec, targets []Target) holdPlan {
	var p holdPlan
	holdAll := false
	add := func(name string) {
		if !slices.Contains(p.containers, name) {
			p.containers = append(p.containers, name)
		}
	}
	addPort := func(n int32) {
		if !slices.Contains(p.ports, n) {
			p.ports = append(p.ports, n)
		}
	}
	for _, t := range targets {
		found := false
		for _, c := range servingContainers(spec) {
			for _, cp := range c.Ports {
				if !portMatches(cp, t.TargetPort) {
					continue
				}
				found = true
				addPort(cp.ContainerPort)
				if isSidecar(spec, c.Name) {
					holdAll = true
				} else {
					add(c.Name)
				}
			}
		}
		if !found && t.TargetPort.Type == intstr.Int && t.TargetPort.IntVal > 0 {
			found = true
			holdAll = true
			addPort(t.TargetPort.IntVal)
		}
		if found {
			p.matched = append(p.matched, t)
		}
	}
	if holdAll {
		for _, c := range spec.Containers {
			add(c.Name)
		}
	}
	slices.Sort(p.ports)
	return p
}

func portMatches(cp corev1.ContainerPort, tp intstr.IntOrString) bool {
	if cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP {
		return false
	}
	if tp.Type == intstr.String {
		return tp.StrVal != "" && cp.Name == tp.StrVal
	}
	return cp.ContainerPort == tp.IntVal
}

// servingContainers are the containers that can receive traffic: app
// containers and native sidecars (restartable init containers).
func servingContainers(spec *corev1.PodSpec) []corev1.Container {
	out := slices.Clone(spec.Containers)
	for _, c := range spec.InitContainers {
		if isRestartable(c) {
			out = append(out, c)
		}
	}
	return out
}

func isSidecar(spec *corev1.PodSpec, name string) bool {
	return slices.ContainsFunc(spec.InitContainers, func(c corev1.Container) bool {
		return c.Name == name && isRestartable(c)
	})
}

func isRestartable(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}
