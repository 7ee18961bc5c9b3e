package lbc

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Selects reports whether svc's selector picks pod. A Service without a
// selector has hand-made endpoints that cannot be tied to a pod.
func Selects(svc *corev1.Service, pod *corev1.Pod) bool {
	return len(svc.Spec.Selector) > 0 &&
		labels.SelectorFromValidatedSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels))
}

// ServicePort finds the TCP port of svc that ref names, by number or name:
// an ALB forwards TCP only.
func ServicePort(svc *corev1.Service, ref intstr.IntOrString) (corev1.ServicePort, bool) {
	for _, p := range svc.Spec.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if (ref.Type == intstr.String && p.Name == ref.StrVal) || (ref.Type == intstr.Int && p.Port == ref.IntVal) {
			return p, true
		}
	}
	return corev1.ServicePort{}, false
}

// TargetPort resolves a reference to one of svc's ports to that port's
// targetPort, which defaults to the port number.
func TargetPort(svc *corev1.Service, ref intstr.IntOrString) (intstr.IntOrString, bool) {
	p, ok := ServicePort(svc, ref)
	if !ok {
		return intstr.IntOrString{}, false
	}
	return TargetPortOf(p), true
}

// TargetPortOf is p's targetPort, which defaults to the port number.
func TargetPortOf(p corev1.ServicePort) intstr.IntOrString {
	if (p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "") || (p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal != 0) {
		return p.TargetPort
	}
	return intstr.FromInt32(p.Port)
}

// ServingPort is a pod port that receives a backend's traffic.
type ServingPort struct {
	// Port is the port number on the pod's IP: the one the LBC registers.
	Port int32
	// Container declares the port; empty for a numeric target port that no
	// container declares (declaring ports is optional, and it still reaches
	// the pod).
	Container string
	// Sidecar is set when Container is a native sidecar (a restartable init
	// container), which outlives the app containers.
	Sidecar bool
}

// ServingPorts resolves a Service's target port on a pod as the EndpointSlice
// controller, and so the LBC, does: a number is that port, a name is the TCP
// container port of that name in an app container or a native sidecar.
func ServingPorts(spec *corev1.PodSpec, tp intstr.IntOrString) []ServingPort {
	var out []ServingPort
	scan := func(cs []corev1.Container, sidecars bool) {
		for _, c := range cs {
			if sidecars && !IsSidecar(c) {
				continue
			}
			for _, cp := range c.Ports {
				if portMatches(cp, tp) {
					out = append(out, ServingPort{Port: cp.ContainerPort, Container: c.Name, Sidecar: sidecars})
				}
			}
		}
	}
	scan(spec.Containers, false)
	scan(spec.InitContainers, true)
	if len(out) == 0 && tp.Type == intstr.Int && tp.IntVal > 0 {
		out = append(out, ServingPort{Port: tp.IntVal})
	}
	return out
}

// RegisteredPort is the pod port the LBC registers for target port tp, if
// the pod has one.
func RegisteredPort(spec *corev1.PodSpec, tp intstr.IntOrString) (int32, bool) {
	ps := ServingPorts(spec, tp)
	if len(ps) == 0 {
		return 0, false
	}
	return ps[0].Port, true
}

// IsSidecar reports whether an init container is a native sidecar.
func IsSidecar(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
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

func appendNew[T comparable](s []T, v T) []T {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
