package inject

import (
	"encoding/json"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/albdrain/albdrain/internal/contract"
)

// Remove undoes an earlier pass of Apply, for a pod albdrain can no longer
// hold: a mesh injector that ran after albdrain's first pass, say. Each
// held container gets back its own preStop, the helper and its volumes go,
// the grace period returns to the application's budget, and the pod loses
// its managed label and record, so nothing claims a hold that is not there.
// It reports whether the pod had been injected; a pod without a record is
// left as it is.
func Remove(pod *corev1.Pod) bool {
	prev := contract.ParseRecord(pod.Annotations)
	if prev == nil {
		return false
	}
	for i := range pod.Spec.InitContainers {
		if slices.Contains(prev.Sidecars, pod.Spec.InitContainers[i].Name) {
			unhold(&pod.Spec.InitContainers[i], prev)
		}
	}
	for i := range pod.Spec.Containers {
		if slices.Contains(prev.Containers, pod.Spec.Containers[i].Name) {
			unhold(&pod.Spec.Containers[i], prev)
		}
	}
	pod.Spec.InitContainers = slices.DeleteFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == contract.InitContainerName })
	pod.Spec.Volumes = slices.DeleteFunc(pod.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Name == contract.VolumeName || v.Name == contract.TrustVolumeName
	})
	if prev.ShutdownBudgetSeconds != nil {
		pod.Spec.TerminationGracePeriodSeconds = prev.ShutdownBudgetSeconds
	}
	delete(pod.Annotations, contract.InjectedKey)
	delete(pod.Labels, contract.ManagedLabel)
	return true
}

// unhold gives c back its own preStop and drops the helper's mounts and
// environment.
func unhold(c *corev1.Container, prev *contract.Record) {
	h := preStopOf(c)
	switch {
	case isHelperHook(c):
		var own *corev1.LifecycleHandler
		if s, err := contract.Parse(h.Exec.Command[1:]); err == nil && s.Then != nil {
			own = fromHandler(s.Then)
		}
		c.Lifecycle.PreStop = own
	case h != nil && h.Sleep != nil && prev.Mode == string(contract.ModeSleep) && h.Sleep.Seconds >= prev.MaxHoldSeconds:
		if own := h.Sleep.Seconds - prev.MaxHoldSeconds; own > 0 {
			c.Lifecycle.PreStop = &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: own}}
		} else {
			c.Lifecycle.PreStop = nil
		}
	}
	if c.Lifecycle != nil && *c.Lifecycle == (corev1.Lifecycle{}) {
		c.Lifecycle = nil
	}
	c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == contract.VolumeName || m.Name == contract.TrustVolumeName
	})
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return slices.Contains(helperEnv, e.Name) })
	if len(c.VolumeMounts) == 0 {
		c.VolumeMounts = nil
	}
	if len(c.Env) == 0 {
		c.Env = nil
	}
}

// helperEnv is the environment Apply gives a held container.
var helperEnv = []string{contract.EnvPodName, contract.EnvPodNamespace, contract.EnvPodUID, contract.EnvPodIP,
	contract.EnvHostIP, contract.EnvWatcherURL, contract.EnvWatcherCA, contract.EnvTrustDir}

// fromHandler is toHandler's inverse.
func fromHandler(h *contract.Handler) *corev1.LifecycleHandler {
	b, _ := json.Marshal(h)
	var out corev1.LifecycleHandler
	_ = json.Unmarshal(b, &out)
	return &out
}
