package inject

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/contract"
)

// TestRemove: undoing a pass gives back the pod as it was, but for the load
// balancer controller's readiness gate, which that controller sets, and a
// grace period of the application's budget.
func TestRemove(t *testing.T) {
	withPreStop := func(c corev1.Container, h *corev1.LifecycleHandler) corev1.Container {
		c.Lifecycle = &corev1.Lifecycle{PreStop: h}
		return c
	}
	tests := []struct {
		name  string
		pod   func() *corev1.Pod
		opts  func(*Options)
		grace int64
	}{
		{name: "plain pod", pod: func() *corev1.Pod { return podWith(container("app", port("http", 8080))) }, grace: 30},
		{
			name: "own exec preStop, ServiceAccount, CA bundle, two containers",
			pod: func() *corev1.Pod {
				p := podWith(withPreStop(container("app", port("http", 8080)), envoyDrain), container("worker"))
				p.Spec.ServiceAccountName = "default"
				p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](90)
				p.Annotations = map[string]string{"team": "shop"}
				return p
			},
			opts:  func(o *Options) { o.CABundle = true },
			grace: 90,
		},
		{
			name: "sleep mode with an own sleep",
			pod: func() *corev1.Pod {
				return podWith(withPreStop(container("app", port("http", 8080)), &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}))
			},
			opts:  func(o *Options) { o.Mode = contract.ModeSleep },
			grace: 30,
		},
		{
			name: "held native sidecar",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Spec.InitContainers = []corev1.Container{nativeSidecar("envoy", envoyDrain)}
				return p
			},
			grace: 30,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod()
			firstPass(t, pod, tc.opts)
			if !Remove(pod) {
				t.Fatal("Remove found no record")
			}
			want := tc.pod()
			want.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: gate}}
			want.Spec.TerminationGracePeriodSeconds = ptr.To(tc.grace)
			if d := cmp.Diff(want, pod, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("after Remove (-want +got):\n%s", d)
			}
			if Remove(pod) {
				t.Error("a second Remove found a record")
			}
		})
	}
}
