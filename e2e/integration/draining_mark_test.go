package integration

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/drain/watcher/hold"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// TestDrainingStartIsKeptOnThePod checks, against the real apiserver, that
// the watcher's record of when a pod's target began draining lands on that
// pod and no other: a same-named successor (another UID) is refused.
func TestDrainingStartIsKeptOnThePod(t *testing.T) {
	env := kubetest.Start(t)
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1"
	start := time.Date(2026, 11, 28, 10, 0, 0, 123456789, time.UTC)
	marker := hold.PodMarker{Client: env.Client}
	if err := marker.MarkDraining(ctx, pod, map[string]time.Time{arn: start}); err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
		t.Fatal(err)
	}
	want := `{"` + arn + `":"2026-11-28T10:00:00.123456789Z"}`
	if v := got.Annotations[contract.DrainingSinceKey]; v != want {
		t.Errorf("annotation %q, want %q", v, want)
	}

	stale := pod.DeepCopy()
	stale.UID = "another-pod"
	if err := marker.MarkDraining(ctx, stale, map[string]time.Time{arn: start.Add(time.Hour)}); err == nil {
		t.Error("a mark meant for another pod of the same name was written")
	}
}
