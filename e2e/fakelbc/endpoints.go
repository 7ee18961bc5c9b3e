package fakelbc

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/lbc"
)

// errBackendNotFound is backend.ErrNotFound: the Service or its port is
// gone, and the binding's targets are cleaned up.
var errBackendNotFound = errors.New("backend not found")

// target is an ip target.
type target struct {
	ip   string
	port int32
}

func (t target) String() string { return fmt.Sprintf("%s:%d", t.ip, t.port) }

// endpoint is one pod endpoint to register, with its pod.
type endpoint struct {
	target
	pod *corev1.Pod
}

// endpointData is an EndpointSlice's worth of endpoints and ports.
type endpointData struct {
	ports     []discoveryv1.EndpointPort
	endpoints []discoveryv1.Endpoint
}

// resolve is backend.defaultEndpointResolver.ResolvePodEndpoints with
// EndpointsFailOpen on (its default). An endpoint is registered when it is
// ready (a missing ready counts as ready), or when it is not ready but its
// pod's containers are ready on a Ready node and it is not terminating,
// whether or not the pod has a readiness gate. Endpoints on nodes whose
// readiness is Unknown are used only when no endpoint qualifies otherwise.
// An endpoint whose pod is not in the cache yet is skipped.
func (c *Controller) resolve(ctx context.Context, tgb *lbc.TargetGroupBinding) ([]endpoint, error) {
	var svc corev1.Service
	err := c.cache.Get(ctx, types.NamespacedName{Namespace: tgb.Namespace, Name: tgb.Spec.ServiceRef.Name}, &svc)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: service %s", errBackendNotFound, tgb.Spec.ServiceRef.Name)
	}
	if err != nil {
		return nil, err
	}
	sp, ok := servicePort(&svc, tgb.Spec.ServiceRef.Port)
	if !ok {
		return nil, fmt.Errorf("%w: service %s has no port %s", errBackendNotFound, svc.Name, tgb.Spec.ServiceRef.Port.String())
	}
	var data []endpointData
	if c.opts.EndpointSlices {
		data, err = c.sliceData(ctx, &svc)
	} else {
		data, err = c.podData(ctx, &svc, sp)
	}
	if err != nil {
		return nil, err
	}
	var ready, unknown []endpoint
	for _, d := range data {
		for _, p := range d.ports {
			if sp.Name != "" && sp.Name != ptr.Deref(p.Name, "") {
				continue
			}
			for _, ep := range d.endpoints {
				if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || len(ep.Addresses) == 0 {
					continue
				}
				var pod corev1.Pod
				err := c.cache.Get(ctx, types.NamespacedName{Namespace: cmp.Or(ep.TargetRef.Namespace, svc.Namespace), Name: ep.TargetRef.Name}, &pod)
				if apierrors.IsNotFound(err) {
					c.opts.Log.Info("the pod in endpoint is not found in pod cache yet", "pod", ep.TargetRef.Name)
					continue
				}
				if err != nil {
					return nil, err
				}
				e := endpoint{target{ep.Addresses[0], ptr.Deref(p.Port, 0)}, &pod}
				if ptr.Deref(ep.Conditions.Ready, true) {
					ready = append(ready, e)
					continue
				}
				if !conditionTrue(&pod, corev1.ContainersReady) {
					continue
				}
				var node corev1.Node
				if err := c.cache.Get(ctx, types.NamespacedName{Name: pod.Spec.NodeName}, &node); err != nil {
					continue
				}
				switch nodeReady(&node) {
				case corev1.ConditionTrue:
					if !ptr.Deref(ep.Conditions.Terminating, false) {
						ready = append(ready, e)
					}
				case corev1.ConditionUnknown:
					unknown = append(unknown, e)
				}
			}
		}
	}
	if len(ready) == 0 {
		return unknown, nil
	}
	return ready, nil
}

// sliceData reads the Service's IPv4 EndpointSlices
// (computeServiceEndpointsData).
func (c *Controller) sliceData(ctx context.Context, svc *corev1.Service) ([]endpointData, error) {
	var slices discoveryv1.EndpointSliceList
	if err := c.cache.List(ctx, &slices, client.InNamespace(svc.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return nil, err
	}
	var out []endpointData
	for _, s := range slices.Items {
		if s.AddressType == discoveryv1.AddressTypeIPv4 {
			out = append(out, endpointData{s.Ports, s.Endpoints})
		}
	}
	return out, nil
}

// podData builds, from the pods the Service selects, the slice the
// EndpointSlice controller would publish: the stand-in kubelet's pods have
// loopback addresses, which the apiserver refuses in EndpointSlices. A pod
// with an IP that has not finished is an endpoint, ready when its Ready
// condition is True and it is not terminating; named target ports are
// resolved per pod.
func (c *Controller) podData(ctx context.Context, svc *corev1.Service, sp corev1.ServicePort) ([]endpointData, error) {
	if len(svc.Spec.Selector) == 0 {
		return nil, nil
	}
	var pods corev1.PodList
	if err := c.cache.List(ctx, &pods, client.InNamespace(svc.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return nil, err
	}
	var out []endpointData
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.PodIP == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		port, ok := podPort(pod, sp)
		if !ok {
			continue
		}
		terminating := pod.DeletionTimestamp != nil
		out = append(out, endpointData{
			ports: []discoveryv1.EndpointPort{{Name: ptr.To(sp.Name), Port: ptr.To(port)}},
			endpoints: []discoveryv1.Endpoint{{
				Addresses:  []string{pod.Status.PodIP},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(!terminating && conditionTrue(pod, corev1.PodReady)), Terminating: ptr.To(terminating)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
			}},
		})
	}
	return out, nil
}

func servicePort(svc *corev1.Service, ref intstr.IntOrString) (corev1.ServicePort, bool) {
	for _, sp := range svc.Spec.Ports {
		if (ref.Type == intstr.Int && sp.Port == ref.IntVal) || (ref.Type == intstr.String && sp.Name == ref.StrVal) {
			return sp, true
		}
	}
	return corev1.ServicePort{}, false
}

// podPort is the pod port a Service port sends to: its target port by
// number, or the pod's container port of that name and protocol.
func podPort(pod *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, true
		}
		return tp.IntVal, true
	}
	proto := cmp.Or(sp.Protocol, corev1.ProtocolTCP)
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == tp.StrVal && cmp.Or(cp.Protocol, corev1.ProtocolTCP) == proto {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}
