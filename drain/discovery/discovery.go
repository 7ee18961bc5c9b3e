// Package discovery finds the ELBv2 target groups a pod is registered in and
// the port it is registered on, and the target groups' deregistration
// delays. It runs once per hold, from caches: Kubernetes objects come from
// the manager's informers and AWS facts from caches refreshed on their own
// schedule, so polling never repeats discovery.
package discovery

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Target is one target group the pod is in and the port it is registered on.
type Target struct {
	TargetGroupARN string
	Port           int32
}

// Resolver finds a pod's targets.
type Resolver interface {
	Targets(ctx context.Context, pod *corev1.Pod) ([]Target, error)
}

// podPort is the pod port a Service port sends to, as the load balancer
// controller registers it: the target port by number, or the pod's container
// port of that name and protocol.
func podPort(pod *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, true // unset: the Service port itself
		}
		return tp.IntVal, true
	}
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			p := cp.Protocol
			if p == "" {
				p = corev1.ProtocolTCP
			}
			if cp.Name == tp.StrVal && p == proto {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}
