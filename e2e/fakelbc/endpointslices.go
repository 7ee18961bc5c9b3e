package fakelbc

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/lbc"
)

// sliceMembers are the targets the binding should have, read from the
// Service's EndpointSlices as the real controller reads them: every ready
// endpoint, plus a not-ready one that is not terminating when its pod
// carries the binding's readiness gate and has ready containers (the gate
// waits for the target, so registration cannot wait for the gate). A
// terminating endpoint is never a member, serving or not: the controller
// deregisters it as soon as it sees the termination.
func (c *Controller) sliceMembers(ctx context.Context, tgb *lbc.TargetGroupBinding, svc *corev1.Service, sp corev1.ServicePort) (map[target]*corev1.Pod, error) {
	var slices discoveryv1.EndpointSliceList
	if err := c.cache.List(ctx, &slices, client.InNamespace(tgb.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return nil, err
	}
	gate := corev1.PodConditionType(lbc.ReadinessGatePrefix + tgb.Name)
	out := map[target]*corev1.Pod{}
	for _, s := range slices.Items {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port, ok := slicePort(&s, sp)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			pod, err := c.endpointPod(ctx, tgb.Namespace, ep)
			if err != nil {
				return nil, err
			}
			ready := ep.Conditions.Ready != nil && *ep.Conditions.Ready
			terminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			gated := pod != nil && hasGate(pod, gate) && conditionTrue(pod, corev1.ContainersReady)
			if ready || (!terminating && gated) {
				out[target{ep.Addresses[0], port}] = pod
			}
		}
	}
	return out, nil
}

// slicePort is the port a slice lists under the Service port's name: the
// EndpointSlice controller has already resolved named target ports.
func slicePort(s *discoveryv1.EndpointSlice, sp corev1.ServicePort) (int32, bool) {
	for _, p := range s.Ports {
		if p.Port != nil && (p.Name == nil && sp.Name == "" || p.Name != nil && *p.Name == sp.Name) {
			return *p.Port, true
		}
	}
	return 0, false
}

// endpointPod is the pod an endpoint refers to, nil when it names none or is gone.
func (c *Controller) endpointPod(ctx context.Context, ns string, ep discoveryv1.Endpoint) (*corev1.Pod, error) {
	if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
		return nil, nil
	}
	var pod corev1.Pod
	err := c.cache.Get(ctx, types.NamespacedName{Namespace: ns, Name: ep.TargetRef.Name}, &pod)
	if client.IgnoreNotFound(err) != nil {
		return nil, fmt.Errorf("pod of endpoint %v: %w", ep.Addresses, err)
	}
	if err != nil || pod.UID != ep.TargetRef.UID {
		return nil, nil
	}
	return &pod, nil
}
