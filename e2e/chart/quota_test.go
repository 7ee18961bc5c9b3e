package chart

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// TestQuotaNamespacesAdmitMutatedPods installs the chart with its default
// init-container resources and creates pods, through the real apiserver's
// ResourceQuota and LimitRanger admission, in namespaces that refused them
// when those resources were fixed: each pod is admitted and mutated.
func TestQuotaNamespacesAdmitMutatedPods(t *testing.T) {
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD())
	installAndStart(t, env, "", fakeAWS)
	q := resource.MustParse
	tests := []struct {
		name string
		obj  client.Object
	}{
		{"quota-limits-cpu", &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q"},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceLimitsCPU: q("1000"), corev1.ResourceLimitsMemory: q("1000Gi")}}}},
		{"limitrange-memory-min", &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "lr"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer, Min: corev1.ResourceList{corev1.ResourceMemory: q("32Mi")}}}}}},
		{"limitrange-ratio", &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "lr"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer, MaxLimitRequestRatio: corev1.ResourceList{corev1.ResourceCPU: q("1.5"), corev1.ResourceMemory: q("1.5")}}}}}},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newALBNamespace(t, env.Client, tc.name, optIn)
			tc.obj.SetNamespace(tc.name)
			if err := env.Client.Create(ctx, tc.obj); err != nil {
				t.Fatal(err)
			}
			if quota, ok := tc.obj.(*corev1.ResourceQuota); ok {
				// The quota controller's part: admission needs the quota's status.
				quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{corev1.ResourceLimitsCPU: q("0"), corev1.ResourceLimitsMemory: q("0")}}
				if err := env.Client.Status().Update(ctx, quota); err != nil {
					t.Fatal(err)
				}
			}
			// Pods in these namespaces set their own resources as the
			// namespace demands; albdrain's init container must too.
			pod := webPod(tc.name, nil)
			pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("64Mi")},
			}
			eventually(t, "a pod admitted and mutated", func() (bool, error) {
				p := pod.DeepCopy()
				if err := env.Client.Create(ctx, p); err != nil {
					return false, err
				}
				if !mutated(p) {
					return false, env.Client.Delete(ctx, p)
				}
				if len(p.Spec.InitContainers) == 0 || p.Spec.InitContainers[0].Name != contract.InitContainerName {
					t.Errorf("no init container: %+v", p.Spec.InitContainers)
				}
				return true, nil
			}, nil)
		})
	}
}
