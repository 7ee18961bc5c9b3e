package fakelbc

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// registering is the health the controller assumes for a target it
// registers in this reconcile (updateTargetHealthPodCondition).
var registering = &elbv2types.TargetHealth{
	State:       elbv2types.TargetHealthStateEnumInitial,
	Reason:      elbv2types.TargetHealthReasonEnumRegistrationInProgress,
	Description: aws.String("Target registration is in progress"),
}

// deletedBinding is the health it gives every gated pod of a binding being
// deleted, so no gate outlives its binding (updatePodAsHealthyForDeletedTGB).
var deletedBinding = &elbv2types.TargetHealth{
	State:       elbv2types.TargetHealthStateEnumHealthy,
	Description: aws.String("Target Group Binding is deleted"),
}

// setGate is defaultResourceManager.updateTargetHealthPodConditionForPod:
// the gate is True when the target is healthy, Unknown when its health is
// not known (just registered or deregistered by this controller), False
// otherwise, with ELB's reason code and description. It patches only when
// status, reason or message change, and moves the transition time only
// with the status. It reports whether the binding must be requeued to read
// the health again.
func (c *Controller) setGate(ctx context.Context, pod *corev1.Pod, gate corev1.PodConditionType, th *elbv2types.TargetHealth) (requeue bool, err error) {
	if !hasGate(pod, gate) {
		return false, nil
	}
	status := corev1.ConditionUnknown
	var reason, message string
	if th != nil {
		status = corev1.ConditionFalse
		if th.State == elbv2types.TargetHealthStateEnumHealthy {
			status = corev1.ConditionTrue
		}
		reason, message = string(th.Reason), aws.ToString(th.Description)
	}
	requeue = status != corev1.ConditionTrue
	have := condition(pod, gate)
	if have != nil && have.Status == status && have.Reason == reason && have.Message == message {
		return requeue, nil
	}
	cond := corev1.PodCondition{Type: gate, Status: status, Reason: reason, Message: message, LastTransitionTime: metav1.Now()}
	if have != nil && have.Status == status {
		cond.LastTransitionTime = have.LastTransitionTime
	}
	// A strategic merge keyed by type leaves the kubelet's conditions
	// alone; the UID makes it fail rather than touch a namesake pod. An
	// empty reason or message is sent as null, which removes the old one
	// (the controller's StrategicMergeFrom patch does the same).
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status": map[string]any{"conditions": []map[string]any{{
			"type": cond.Type, "status": cond.Status, "reason": orNull(cond.Reason), "message": orNull(cond.Message),
			"lastTransitionTime": cond.LastTransitionTime,
		}}},
	})
	if err != nil {
		return false, err
	}
	err = c.client.Status().Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, body))
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return requeue, err
}

// needGateFlip is needReadinessGateFlip: some endpoint's pod has the
// condition and it is not True, so a skipped reconcile would strand it.
func needGateFlip(eps []endpoint, gate corev1.PodConditionType) bool {
	return slices.ContainsFunc(eps, func(e endpoint) bool {
		c := condition(e.pod, gate)
		return c != nil && c.Status != corev1.ConditionTrue
	})
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
