package unheld

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/albdrain/albdrain/internal/contract"
)

// TestExpected: only a deleted wait-mode pod one of whose held containers
// started should have reached the watcher.
func TestExpected(t *testing.T) {
	now := metav1.Now()
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	ranAndStopped := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{StartedAt: now, FinishedAt: now}}
	neverStarted := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "ContainerCannotRun"}}
	pod := func(record string, deleted bool, statuses ...corev1.ContainerStatus) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop"}, Status: corev1.PodStatus{ContainerStatuses: statuses}}
		if record != "" {
			p.Annotations = map[string]string{contract.InjectedKey: record}
		}
		if deleted {
			p.DeletionTimestamp = &now
		}
		return p
	}
	const wait = `{"mode":"wait","containers":["app"]}`
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"wait mode, held container running", pod(wait, true, corev1.ContainerStatus{Name: "app", State: running}), true},
		{"wait mode, held container ran and stopped", pod(wait, true, corev1.ContainerStatus{Name: "app", State: ranAndStopped}), true},
		{"held container never started", pod(wait, true, corev1.ContainerStatus{Name: "app", State: neverStarted}), false},
		{"only an unheld container ran", pod(wait, true, corev1.ContainerStatus{Name: "sidecar", State: running}), false},
		{"sleep mode", pod(`{"mode":"sleep","containers":["app"]}`, true, corev1.ContainerStatus{Name: "app", State: running}), false},
		{"not deleted through the API (evicted by the kubelet)", pod(wait, false, corev1.ContainerStatus{Name: "app", State: running}), false},
		{"no record", pod("", true, corev1.ContainerStatus{Name: "app", State: running}), false},
		{"unreadable record", pod("{", true, corev1.ContainerStatus{Name: "app", State: running}), false},
	}
	var got, want []string
	for _, tc := range tests {
		if Expected(tc.pod) {
			got = append(got, tc.name)
		}
		if tc.want {
			want = append(want, tc.name)
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("expected pods (-want +got):\n%s", d)
	}
}
