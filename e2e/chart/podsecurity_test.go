package chart

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// checkRestricted admits the Deployment's pod into albdrain's namespace,
// where the apiserver enforces the restricted standard; Pod Security
// admission judges pods, not Deployments, so the pod is made from the
// template.
func checkRestricted(t *testing.T, c client.Client, dep *unstructured.Unstructured) {
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(dep.Object, &d); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}
	pod.Namespace, pod.GenerateName = releaseNamespace, releaseName+"-"
	if err := c.Create(context.Background(), pod, client.DryRunAll); err != nil {
		t.Fatalf("the manager's pod is refused: %v", err)
	}
	// The same pod made privileged must be refused, or the namespace enforces nothing.
	bad := &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: *d.Spec.Template.Spec.DeepCopy()}
	bad.Namespace, bad.GenerateName = releaseNamespace, releaseName+"-"
	bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	err := c.Create(context.Background(), bad, client.DryRunAll)
	if err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("a pod allowing privilege escalation was not refused by the restricted standard: %v", err)
	}
}
