package fakelbc

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/lbc"
)

// target is an ip target.
type target struct {
	ip   string
	port int32
}

// reconcile brings one binding's target group in line with its Service's
// endpoints and the pods' readiness gates in line with target health, then
// records the generation it reconciled in the binding's status. It asks to
// be requeued while a gated pod waits for its target to be healthy.
func (c *Controller) reconcile(ctx context.Context, key types.NamespacedName) (requeue bool, err error) {
	var tgb lbc.TargetGroupBinding
	if err := c.cache.Get(ctx, key, &tgb); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if tgb.Spec.TargetType != nil && *tgb.Spec.TargetType != lbc.TargetTypeIP {
		return false, nil
	}
	members, err := c.members(ctx, &tgb)
	if err != nil {
		return false, err
	}
	arn := aws.String(tgb.Spec.TargetGroupARN)
	out, err := c.opts.ELBv2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: arn})
	if err != nil {
		return false, fmt.Errorf("describe target health: %w", err)
	}
	// Draining targets are on their way out already; like the real
	// controller, they do not count as registered.
	registered := map[target]elbv2types.TargetHealthStateEnum{}
	for _, d := range out.TargetHealthDescriptions {
		state := d.TargetHealth.State
		if state == elbv2types.TargetHealthStateEnumDraining {
			continue
		}
		registered[target{aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port)}] = state
	}

	var add, remove []elbv2types.TargetDescription
	for t := range registered {
		if _, ok := members[t]; !ok {
			remove = append(remove, description(t))
		}
	}
	for t := range members {
		if _, ok := registered[t]; !ok {
			add = append(add, description(t))
		}
	}
	if len(remove) > 0 {
		if _, err := c.opts.ELBv2.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: arn, Targets: remove}); err != nil {
			return false, fmt.Errorf("deregister targets: %w", err)
		}
		c.opts.Log.Info("deregistered targets", "binding", key, "targets", ids(remove))
	}
	if len(add) > 0 {
		if _, err := c.opts.ELBv2.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: arn, Targets: add}); err != nil {
			return false, fmt.Errorf("register targets: %w", err)
		}
		c.opts.Log.Info("registered targets", "binding", key, "targets", ids(add))
	}
	requeue, err = c.updateGates(ctx, tgb.Name, members, registered)
	if err != nil {
		return requeue, err
	}
	return requeue, MarkReconciled(ctx, c.client, &tgb)
}

// members are the targets the binding should have: the pods the Service
// selects that are ready, plus those that carry the binding's readiness
// gate, have ready containers and are not terminating.
//
// The real controller reads these from the Service's EndpointSlices, and so
// does this one with Options.EndpointSlices (pods on a real node). Otherwise
// the pods are read directly, by the EndpointSlice controller's own rules
// (a pod IP, not finished; ready means the Ready condition and not
// terminating), because the apiserver refuses loopback addresses in
// EndpointSlices and the stand-in kubelet's pods have loopback ones.
func (c *Controller) members(ctx context.Context, tgb *lbc.TargetGroupBinding) (map[target]*corev1.Pod, error) {
	var svc corev1.Service
	err := c.cache.Get(ctx, types.NamespacedName{Namespace: tgb.Namespace, Name: tgb.Spec.ServiceRef.Name}, &svc)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, nil
	}
	sp, ok := servicePort(&svc, tgb.Spec.ServiceRef.Port)
	if !ok {
		return nil, fmt.Errorf("service %s has no port %s", svc.Name, tgb.Spec.ServiceRef.Port.String())
	}
	if c.opts.EndpointSlices {
		return c.sliceMembers(ctx, tgb, &svc, sp)
	}
	var pods corev1.PodList
	if err := c.cache.List(ctx, &pods, client.InNamespace(tgb.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return nil, err
	}
	gate := corev1.PodConditionType(lbc.ReadinessGatePrefix + tgb.Name)
	out := map[target]*corev1.Pod{}
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
		ready := !terminating && conditionTrue(pod, corev1.PodReady)
		if ready || (!terminating && hasGate(pod, gate) && conditionTrue(pod, corev1.ContainersReady)) {
			out[target{pod.Status.PodIP, port}] = pod
		}
	}
	return out, nil
}

// updateGates sets each member pod's readiness-gate condition from its
// target's health, and reports whether some gate still waits.
func (c *Controller) updateGates(ctx context.Context, tgbName string, members map[target]*corev1.Pod, registered map[target]elbv2types.TargetHealthStateEnum) (bool, error) {
	gate := corev1.PodConditionType(lbc.ReadinessGatePrefix + tgbName)
	waiting := false
	for t, pod := range members {
		if pod == nil || !hasGate(pod, gate) {
			continue
		}
		healthy := registered[t] == elbv2types.TargetHealthStateEnumHealthy
		status := corev1.ConditionFalse
		if healthy {
			status = corev1.ConditionTrue
		} else {
			waiting = true
		}
		if have := condition(pod, gate); have != nil && have.Status == status {
			continue
		}
		if err := c.setCondition(ctx, pod, corev1.PodCondition{
			Type: gate, Status: status, LastTransitionTime: metav1.Now(),
			// A target registered in this very reconcile has no state yet.
			Reason:  cmp.Or(string(registered[t]), string(elbv2types.TargetHealthStateEnumInitial)),
			Message: "target " + t.String() + " in target group of TargetGroupBinding " + tgbName,
		}); err != nil {
			return waiting, err
		}
	}
	return waiting, nil
}

// setCondition merges one condition into the pod's status; a strategic
// merge keyed by type leaves the kubelet's conditions alone.
func (c *Controller) setCondition(ctx context.Context, pod *corev1.Pod, cond corev1.PodCondition) error {
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   map[string]any{"conditions": []corev1.PodCondition{cond}},
	})
	if err != nil {
		return err
	}
	err = c.client.Status().Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, body))
	if apierrors.IsNotFound(err) {
		return nil // gone meanwhile: nothing left to gate
	}
	return err
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

func hasGate(pod *corev1.Pod, gate corev1.PodConditionType) bool {
	return slices.ContainsFunc(pod.Spec.ReadinessGates, func(g corev1.PodReadinessGate) bool { return g.ConditionType == gate })
}

func condition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func conditionTrue(pod *corev1.Pod, t corev1.PodConditionType) bool {
	c := condition(pod, t)
	return c != nil && c.Status == corev1.ConditionTrue
}

func description(t target) elbv2types.TargetDescription {
	return elbv2types.TargetDescription{Id: aws.String(t.ip), Port: aws.Int32(t.port)}
}

func ids(ts []elbv2types.TargetDescription) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = target{aws.ToString(t.Id), aws.ToInt32(t.Port)}.String()
	}
	return out
}

func (t target) String() string { return fmt.Sprintf("%s:%d", t.ip, t.port) }
