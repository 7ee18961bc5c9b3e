// Package gates reports pods that a readiness gate albdrain injected keeps
// NotReady: the load balancer controller sets the gate from its binding's
// target health, and where none does (it is down, watches other namespaces,
// or fails on the binding) the pod would stay NotReady for ever, stalling
// rollouts and node drains behind PodDisruptionBudgets. The webhook adds a
// gate only for bindings a controller has reconciled, which leaves the
// controller failing later; this package makes that visible with a Warning
// event on the pod and a gauge. It only reports: it never changes a pod.
package gates

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// Unset is an albdrain-injected readiness gate of a pod that is not True.
type Unset struct {
	// Gate is the gate's condition type.
	Gate string
	// Status is the condition's status, "" when the pod has no such condition.
	Status corev1.ConditionStatus
	// Reason is the condition's reason.
	Reason string
}

func (u Unset) String() string {
	if u.Status == "" {
		return u.Gate + " (no condition: no load balancer controller has set it)"
	}
	return fmt.Sprintf("%s (%s: %s)", u.Gate, u.Status, u.Reason)
}

// Blocking returns the readiness gates the webhook injected into pod that
// are not True while they alone can keep it NotReady, and since when they
// have been so: from when the containers became ready (the load balancer
// controller registers the target only then, and its gate follows target
// health) or the gate's own last change, whichever is later. It returns
// nothing for a terminating pod or one whose containers are not ready.
func Blocking(pod *corev1.Pod) (unset []Unset, since time.Time) {
	rec := contract.ParseRecord(pod.Annotations)
	if rec == nil || pod.DeletionTimestamp != nil {
		return nil, time.Time{}
	}
	ready := condition(pod, corev1.ContainersReady)
	if ready == nil || ready.Status != corev1.ConditionTrue {
		return nil, time.Time{}
	}
	since = pod.CreationTimestamp.Time
	if t := ready.LastTransitionTime.Time; t.After(since) {
		since = t
	}
	for _, b := range rec.TargetGroupBindings {
		gate := corev1.PodConditionType(lbc.ReadinessGatePrefix + b)
		if !slices.ContainsFunc(pod.Spec.ReadinessGates, func(g corev1.PodReadinessGate) bool { return g.ConditionType == gate }) {
			continue // skipped by the webhook, or the pod opted out
		}
		c := condition(pod, gate)
		if c == nil {
			unset = append(unset, Unset{Gate: string(gate)})
			continue
		}
		if c.Status == corev1.ConditionTrue {
			continue
		}
		unset = append(unset, Unset{Gate: string(gate), Status: c.Status, Reason: c.Reason})
		if t := c.LastTransitionTime.Time; t.After(since) {
			since = t
		}
	}
	if len(unset) == 0 {
		return nil, time.Time{}
	}
	return unset, since
}

// describe lists unset gates for an event's note.
func describe(unset []Unset) string {
	s := make([]string, len(unset))
	for i, u := range unset {
		s[i] = u.String()
	}
	return strings.Join(s, ", ")
}

func condition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}
