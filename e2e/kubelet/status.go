package kubelet

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Termination is one graceful pod termination as the kubelet carried it out.
type Termination struct {
	Namespace, Name string
	UID             types.UID
	IP              string
	// Noticed is when the kubelet saw the deletion; the grace period counts from it.
	Noticed time.Time
	Grace   time.Duration
	// Hooks are the preStop hooks that ran, one per container that has one.
	Hooks []HookRun
	// Stopped is when the last container stopped serving.
	Stopped time.Time
	// Killed is set when a container still had requests in flight at the
	// end of its grace period and was cut off.
	Killed bool
	// Removed is when the pod was deleted from the API.
	Removed time.Time
}

// Hold is how long the pod was kept serving by its preStop hooks: the
// longest hook, zero without one.
func (t Termination) Hold() time.Duration {
	var d time.Duration
	for _, h := range t.Hooks {
		d = max(d, h.Duration())
	}
	return d
}

// runningStatus is the status of a pod whose containers all serve.
func runningStatus(pod *corev1.Pod, ip string) corev1.PodStatus {
	now := metav1.Now()
	cond := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now}
	}
	st := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    nodeIP,
		HostIPs:   []corev1.HostIP{{IP: nodeIP}},
		PodIP:     ip,
		PodIPs:    []corev1.PodIP{{IP: ip}},
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			cond(corev1.PodReadyToStartContainers), cond(corev1.PodInitialized), cond(corev1.ContainersReady),
			readyCondition(pod, true),
		},
	}
	for _, c := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return st
}

// readyCondition is the pod's Ready condition as the kubelet computes it:
// True only when the containers are ready and every readiness gate's
// condition is True.
func readyCondition(pod *corev1.Pod, containersReady bool) corev1.PodCondition {
	c := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}
	if !containersReady {
		c.Status, c.Reason = corev1.ConditionFalse, "ContainersNotReady"
		return c
	}
	var unready []string
	for _, g := range pod.Spec.ReadinessGates {
		if gc := condition(pod, g.ConditionType); gc == nil || gc.Status != corev1.ConditionTrue {
			unready = append(unready, string(g.ConditionType))
		}
	}
	if len(unready) > 0 {
		c.Status, c.Reason = corev1.ConditionFalse, "ReadinessGatesNotReady"
		c.Message = fmt.Sprintf("the status of pod readiness gates %s is not \"True\"", strings.Join(unready, ", "))
	}
	return c
}

func condition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// patchStatus merges st into the pod's status. A strategic merge keyed by
// condition type leaves the load balancer controller's readiness-gate
// conditions alone, as the real kubelet's status manager does.
func (k *Kubelet) patchStatus(pod *corev1.Pod, st corev1.PodStatus) error {
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   st,
	})
	if err != nil {
		return err
	}
	_, err = k.cs.CoreV1().Pods(pod.Namespace).Patch(k.ctx, pod.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
	return err
}
