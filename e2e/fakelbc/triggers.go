package fakelbc

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/lbc"
)

// What queues a binding, after controllers/elbv2/eventhandlers.

// indexServiceRef indexes bindings by the Service they bind, as
// targetgroupbinding.IndexKeyServiceRefName does.
const indexServiceRef = "spec.serviceRef.name"

// legacyGatePrefix is the readiness gate prefix of the controller's
// predecessor, which it still honours.
const legacyGatePrefix = "target-health.alb.ingress.k8s.aws/"

// onPod queues the bindings the pod's readiness gates name, and only those
// (enqueueRequestsForPodEvent.enqueueImpactedTargetGroupBindings): an
// ungated pod's changes reach the controller through its EndpointSlice.
// Without EndpointSlices the stand-in derives endpoints from pods, so a
// change of what the slice would show of the pod (its termination, say)
// then also stands in for the slice event it would cause.
func (c *Controller) onPod(ctx context.Context, old, obj client.Object) {
	pod := obj.(*corev1.Pod)
	o, _ := old.(*corev1.Pod)
	if !c.opts.EndpointSlices && (o == nil || !equality.Semantic.DeepEqual(sliceView(o), sliceView(pod))) {
		c.enqueueSelecting(ctx, pod)
	}
	if o != nil && equality.Semantic.DeepEqual(podInfo(o), podInfo(pod)) {
		return
	}
	for _, g := range pod.Spec.ReadinessGates {
		for _, prefix := range []string{lbc.ReadinessGatePrefix, legacyGatePrefix} {
			name, ok := strings.CutPrefix(string(g.ConditionType), prefix)
			if ok && len(validation.IsDNS1123Subdomain(name)) == 0 {
				c.enqueue(types.NamespacedName{Namespace: pod.Namespace, Name: name})
			}
		}
	}
}

// enqueueSelecting queues the ip bindings of the Services selecting the
// pod: without EndpointSlices, the pod's change stands in for the change
// of its Service's slice.
func (c *Controller) enqueueSelecting(ctx context.Context, pod *corev1.Pod) {
	var svcs corev1.ServiceList
	if err := c.cache.List(ctx, &svcs, client.InNamespace(pod.Namespace)); err != nil {
		c.opts.Log.Error("list Services", "namespace", pod.Namespace, "err", err)
		return
	}
	for _, svc := range svcs.Items {
		if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			c.enqueueBindingsOf(ctx, pod.Namespace, svc.Name, lbc.TargetTypeIP)
		}
	}
}

// sliceView is what the EndpointSlice controller publishes of a pod.
func sliceView(p *corev1.Pod) any {
	return []any{p.Labels, p.DeletionTimestamp != nil, p.Status.Phase, p.Status.PodIP, conditionTrue(p, corev1.PodReady), p.Spec.NodeName}
}

// podInfo is the part of a pod the controller's pod cache keeps
// (k8s.PodInfo): a change elsewhere, such as an annotation, queues nothing.
func podInfo(p *corev1.Pod) any {
	var ports []corev1.ContainerPort
	for _, c := range p.Spec.Containers {
		ports = append(ports, c.Ports...)
	}
	return []any{p.UID, ports, p.Spec.ReadinessGates, p.Status.Conditions, p.Spec.NodeName, p.Status.PodIP}
}

// onEndpointSlice queues the ip bindings of the slice's Service when its
// ports or endpoints change (enqueueRequestsForEndpointSlicesEvent).
func (c *Controller) onEndpointSlice(ctx context.Context, old, obj client.Object) {
	s := obj.(*discoveryv1.EndpointSlice)
	if o, ok := old.(*discoveryv1.EndpointSlice); ok && equality.Semantic.DeepEqual(o.Ports, s.Ports) && equality.Semantic.DeepEqual(o.Endpoints, s.Endpoints) {
		return
	}
	if svc, ok := s.Labels[discoveryv1.LabelServiceName]; ok {
		c.enqueueBindingsOf(ctx, s.Namespace, svc, lbc.TargetTypeIP)
	}
}

// onService queues the instance bindings of a Service whose ports changed
// (enqueueRequestsForServiceEvent): ip bindings follow its EndpointSlices.
// Without EndpointSlices, a Service change also stands in for the slice
// change it would cause.
func (c *Controller) onService(ctx context.Context, old, obj client.Object) {
	svc := obj.(*corev1.Service)
	if o, ok := old.(*corev1.Service); !ok || !equality.Semantic.DeepEqual(o.Spec.Ports, svc.Spec.Ports) {
		c.enqueueBindingsOf(ctx, svc.Namespace, svc.Name, lbc.TargetTypeInstance)
	}
	if !c.opts.EndpointSlices {
		c.enqueueBindingsOf(ctx, svc.Namespace, svc.Name, lbc.TargetTypeIP)
	}
}

// onNode queues every instance binding when a node's readiness changes
// (enqueueRequestsForNodeEvent; all nodes are suitable traffic proxies
// here). The stand-in reconciles no instance bindings, so this watch only
// costs what the real one costs: a list per node event.
func (c *Controller) onNode(ctx context.Context, old, obj client.Object) {
	o, _ := old.(*corev1.Node)
	if o != nil && nodeReady(o) == nodeReady(obj.(*corev1.Node)) {
		return
	}
	var tgbs lbc.TargetGroupBindingList
	if err := c.cache.List(ctx, &tgbs); err != nil {
		c.opts.Log.Error("list TargetGroupBindings", "err", err)
		return
	}
	for _, tgb := range tgbs.Items {
		if tgb.Spec.TargetType != nil && *tgb.Spec.TargetType == lbc.TargetTypeInstance {
			c.enqueue(client.ObjectKeyFromObject(&tgb))
		}
	}
}

// enqueueBindingsOf queues the bindings of one Service with the target type.
func (c *Controller) enqueueBindingsOf(ctx context.Context, ns, svc string, tt lbc.TargetType) {
	var tgbs lbc.TargetGroupBindingList
	if err := c.cache.List(ctx, &tgbs, client.InNamespace(ns), client.MatchingFields{indexServiceRef: svc}); err != nil {
		c.opts.Log.Error("list TargetGroupBindings", "namespace", ns, "service", svc, "err", err)
		return
	}
	for _, tgb := range tgbs.Items {
		if tgb.Spec.TargetType != nil && *tgb.Spec.TargetType == tt {
			c.enqueue(client.ObjectKeyFromObject(&tgb))
		}
	}
}

func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionFalse
}
