package integration

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/drain/watcher"
	"github.com/albdrain/albdrain/drain/watcher/unheld"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// TestUnheldPodsAreReported terminates two managed wait-mode pods whose
// containers ran: one whose helper asks the watcher for its hold, one whose
// helper never reaches it (as behind a default-deny egress policy). Only the
// second is counted and gets a Warning event.
func TestUnheldPodsAreReported(t *testing.T) {
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD())
	s := newScenario(t, env, true)
	waitMode := func(p *corev1.Pod) {
		p.Annotations = map[string]string{contract.InjectedKey: `{"mode":"wait","maxHoldSeconds":120,"containers":["app"],"ports":[8080],"services":["web"]}`}
	}
	held, unreachable := s.newPod("held", waitMode), s.newPod("unreachable", waitMode)
	for _, p := range []*corev1.Pod{held, unreachable} {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "app", ImageID: "app",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
		if err := env.Client.Status().Update(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	s.startWatcher(s.metrics)
	s.delete(held)
	s.delete(unreachable)
	if r := s.result(s.hold(held, 0)); r.Outcome != contract.OutcomeNotRegistered {
		t.Fatalf("hold ended %q, want not_registered", r.Outcome)
	}
	s.wantEvents(held) // the watcher's events are written asynchronously
	// The kubelet removes each pod once its containers stopped.
	for _, p := range []*corev1.Pod{held, unreachable} {
		if err := env.Client.Delete(context.Background(), p, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(unheld.DefaultSettle + waitLimit)
	s.eventuallyUntil(deadline, "the unheld pod counted", func() bool { return testutil.ToFloat64(s.metrics.PodsNeverHeld) == 1 })
	s.wantEvents(unreachable, contract.ReasonHoldNeverAsked)
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(s.ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.UID == held.UID && e.Reason == contract.ReasonHoldNeverAsked && e.ReportingController == watcher.EventSource {
			t.Errorf("the held pod is reported unheld: %s", e.Note)
		}
	}
	if got := testutil.ToFloat64(s.metrics.PodsNeverHeld); got != 1 {
		t.Errorf("albdrain_pods_terminated_unheld_total = %v, want 1", got)
	}
}

// eventuallyUntil polls cond until it holds or deadline passes.
func (s *scenario) eventuallyUntil(deadline time.Time, what string, cond func() bool) {
	s.t.Helper()
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
