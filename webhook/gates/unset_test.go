package gates

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

var (
	created = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	ready   = created.Add(time.Minute)
	later   = created.Add(3 * time.Minute)
)

// gatedPod is a pod the webhook injected for bindings, with the gates of
// gated bindings and its containers ready at ready.
func gatedPod(bindings, gated []string, conds ...corev1.PodCondition) *corev1.Pod {
	rec, _ := json.Marshal(contract.Record{Mode: "wait", TargetGroupBindings: bindings})
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "uid-1",
		CreationTimestamp: metav1.NewTime(created),
		Annotations:       map[string]string{contract.InjectedKey: string(rec)},
		Labels:            map[string]string{contract.ManagedLabel: "true"}}}
	for _, b := range gated {
		p.Spec.ReadinessGates = append(p.Spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: corev1.PodConditionType(lbc.ReadinessGatePrefix + b)})
	}
	p.Status.Conditions = append([]corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(ready)}}, conds...)
	return p
}

func gateCond(binding string, status corev1.ConditionStatus, reason string, at time.Time) corev1.PodCondition {
	return corev1.PodCondition{Type: corev1.PodConditionType(lbc.ReadinessGatePrefix + binding), Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(at)}
}

func TestBlocking(t *testing.T) {
	type result struct {
		Unset []Unset
		Since time.Time
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want result
	}{
		{"gate never set, since the containers became ready",
			gatedPod([]string{"web"}, []string{"web"}),
			result{[]Unset{{Gate: lbc.ReadinessGatePrefix + "web"}}, ready}},
		{"gate True",
			gatedPod([]string{"web"}, []string{"web"}, gateCond("web", corev1.ConditionTrue, "healthy", later)),
			result{}},
		{"gate False, since its own later change",
			gatedPod([]string{"web"}, []string{"web"}, gateCond("web", corev1.ConditionFalse, "unhealthy", later)),
			result{[]Unset{{Gate: lbc.ReadinessGatePrefix + "web", Status: corev1.ConditionFalse, Reason: "unhealthy"}}, later}},
		{"one of two gates True",
			gatedPod([]string{"web", "admin"}, []string{"web", "admin"}, gateCond("web", corev1.ConditionTrue, "healthy", later)),
			result{[]Unset{{Gate: lbc.ReadinessGatePrefix + "admin"}}, ready}},
		{"gate the webhook left out (binding not reconciled, or opted out) is not albdrain's",
			gatedPod([]string{"web"}, nil),
			result{}},
		{"gate of a binding albdrain does not know (the pod's own) is not albdrain's",
			gatedPod([]string{"web"}, []string{"other"}),
			result{}},
		{"containers not ready: the gate is not what holds the pod",
			func() *corev1.Pod {
				p := gatedPod([]string{"web"}, []string{"web"})
				p.Status.Conditions[0].Status = corev1.ConditionFalse
				return p
			}(),
			result{}},
		{"terminating",
			func() *corev1.Pod {
				p := gatedPod([]string{"web"}, []string{"web"})
				p.DeletionTimestamp = &metav1.Time{Time: later}
				return p
			}(),
			result{}},
		{"not injected",
			func() *corev1.Pod {
				p := gatedPod([]string{"web"}, []string{"web"})
				p.Annotations = nil
				return p
			}(),
			result{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got result
			got.Unset, got.Since = Blocking(tc.pod)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
