package watcher

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// lastApplied is kubectl's copy of the whole object as last applied, often
// the largest annotation an object has; nothing in the manager reads it.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// TrimPod is the pod cache's transform: it keeps what the manager reads of
// a managed pod (metadata, status, volumes, readiness gates, the service
// account, and of each container its name, image, ports, restart policy and
// lifecycle) and drops the rest, above all environment variables, commands
// and probes, which make up most of a large pod.
func TrimPod(obj any) (any, error) {
	obj, err := cache.TransformStripManagedFields()(obj)
	pod, ok := obj.(*corev1.Pod)
	if !ok || err != nil {
		return obj, err
	}
	delete(pod.Annotations, lastApplied)
	trim := func(cs []corev1.Container) {
		for i, c := range cs {
			cs[i] = corev1.Container{Name: c.Name, Image: c.Image, Ports: c.Ports, RestartPolicy: c.RestartPolicy, Lifecycle: c.Lifecycle}
		}
	}
	trim(pod.Spec.Containers)
	trim(pod.Spec.InitContainers)
	pod.Spec.EphemeralContainers = nil
	pod.Spec.Affinity = nil
	pod.Spec.Tolerations = nil
	pod.Spec.TopologySpreadConstraints = nil
	return pod, nil
}
