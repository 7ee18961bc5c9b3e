package chart

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestContainersRunLocked checks, in every configuration, what the
// restricted Pod Security Standard (checked by the install test) leaves
// out: the root filesystem is read-only. Along with it, non-root, no
// privilege escalation and no capability at all, so a change to one value
// set cannot loosen it unnoticed.
func TestContainersRunLocked(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			var d appsv1.Deployment
			dep := find(t, objects(t, mustRender(t, vs.values)), "Deployment", releaseName)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(dep.Object, &d); err != nil {
				t.Fatal(err)
			}
			pod := d.Spec.Template.Spec
			// hostNetwork is the one host namespace a user may opt into (overlay CNIs).
			optedIn := parseValues(t, vs.values)["hostNetwork"] == true
			if pod.HostNetwork != optedIn || pod.HostPID || pod.HostIPC {
				t.Errorf("the manager shares a host namespace (hostNetwork %v, opted in %v)", pod.HostNetwork, optedIn)
			}
			if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
				t.Errorf("pod security context %+v: want a non-root user", sc)
			}
			for _, c := range append(pod.InitContainers, pod.Containers...) {
				checkLocked(t, c)
			}
		})
	}
}

func checkLocked(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("container %s has no security context", c.Name)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("container %s: root filesystem writable", c.Name)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("container %s: privilege escalation allowed", c.Name)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("container %s: privileged", c.Name)
	case sc.RunAsUser != nil && *sc.RunAsUser == 0, sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
		t.Errorf("container %s: runs as root", c.Name)
	case sc.Capabilities == nil || len(sc.Capabilities.Add) > 0 || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL":
		t.Errorf("container %s: capabilities %+v, want all dropped and none added", c.Name, sc.Capabilities)
	}
}
