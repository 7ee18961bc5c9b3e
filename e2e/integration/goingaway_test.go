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

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// A liveness or startup probe kills a container and the kubelet runs its
// preStop, but the pod stays, a healthy target the load balancer keeps
// using: no hold helps, and the helper releases at once on the watcher's
// refusal instead of sleeping the fallback and then waiting for a quiet
// that never comes.
func testProbeRestartReleasesAtOnce(t *testing.T, env *kubetest.Env) {
	s := newScenario(t, env, true)
	pod, _ := s.servingPod("web-1")
	s.startWatcher(s.metrics)

	r := s.result(s.hold(pod, time.Hour, func(spec *contract.Spec) { spec.Fallback = time.Hour }))
	if r.Outcome != contract.OutcomeNotTerminating {
		t.Fatalf("hold ended %+v, want not_terminating", r)
	}
	if got := testutil.ToFloat64(s.metrics.HoldRefusals.WithLabelValues(contract.RefusedNotTerminating)); got != 1 {
		t.Errorf("refusals{reason=not_terminating} = %v, want 1", got)
	}
	for _, o := range contract.Outcomes {
		if got := testutil.ToFloat64(s.metrics.Holds.WithLabelValues(string(o))); got != 0 {
			t.Errorf("albdrain_holds_total{outcome=%s} = %v for a pod that was never held", o, got)
		}
	}
}

// Node-pressure eviction and graceful node shutdown stop a pod without an
// API deletion: the kubelet marks it with a DisruptionTarget condition and
// runs its preStop. The load balancer still routes to it, so it is held
// until its target leaves service, as a deleted pod is.
func testKubeletEvictionIsHeld(t *testing.T, env *kubetest.Env) {
	s := newScenario(t, env, true)
	pod, target := s.servingPod("web-1")
	// What the kubelet's eviction manager (and its node shutdown manager)
	// writes before it kills the pod's containers.
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: corev1.PodReasonTerminationByKubelet,
		Message: "The node was low on resource: memory.", LastTransitionTime: metav1.Now(),
	})
	if err := s.env.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	s.startWatcher(s.metrics)

	res := s.hold(pod, 0)
	s.deregisterOncePolled(target)
	if r := s.result(res); r.Outcome != contract.OutcomeDeregistered {
		t.Fatalf("hold ended %+v, want deregistered once the evicted pod's target left", r)
	}
}

// A grace period shortened below the application's budget (kubectl drain
// --grace-period, a spot interruption): the hold ends halfway through it,
// leaving the application the rest, instead of at the deletion timestamp,
// when the kubelet kills it. The target stays healthy, so only the bound
// ends the hold.
func testShortenedGraceLeavesTheBudget(t *testing.T, env *kubetest.Env) {
	const grace, budget = 20 * time.Second, time.Minute
	s := newScenario(t, env, true)
	pod, _ := s.servingPod("web-1")
	s.startWatcher(s.metrics)
	if err := s.env.Client.Delete(context.Background(), pod, client.GracePeriodSeconds(int64(grace/time.Second))); err != nil {
		t.Fatal(err)
	}
	var deleted corev1.Pod
	if err := s.env.Client.Get(context.Background(), client.ObjectKeyFromObject(pod), &deleted); err != nil {
		t.Fatal(err)
	}
	killed := deleted.DeletionTimestamp.Time

	r := s.result(s.hold(pod, time.Hour, func(spec *contract.Spec) { spec.Budget = budget }))
	if ended := time.Now(); !ended.Before(killed) {
		t.Errorf("hold ended %v after the grace period, leaving the application nothing of its %v budget", ended.Sub(killed), budget)
	}
	if r.Outcome != contract.OutcomeTimeout {
		t.Errorf("hold ended %+v, want timeout at its bound", r)
	}
}

// A pod whose six containers are all held (its port undeclared, or served
// by a native sidecar) terminates: the kubelet runs the six helpers at
// once. The pod gets one hold, one outcome and one HoldStarted event, and
// no helper is refused for exceeding the requests a pod may have waiting.
func testSixHeldContainersOneHold(t *testing.T, env *kubetest.Env) {
	const containers = 6
	s := newScenario(t, env, true)
	pod, target := s.servingPod("web-1")
	s.startWatcher(s.metrics)
	s.delete(pod)

	var results []<-chan contract.HoldEnd
	for range containers {
		results = append(results, s.hold(pod, 0))
	}
	s.deregisterOncePolled(target)
	for i, res := range results {
		if r := s.result(res); r.Outcome != contract.OutcomeDeregistered {
			t.Errorf("container %d: hold ended %+v, want deregistered", i, r)
		}
	}
	if got := testutil.ToFloat64(s.metrics.Holds.WithLabelValues(string(contract.OutcomeDeregistered))); got != 1 {
		t.Errorf("albdrain_holds_total{outcome=deregistered} = %v for one pod of %d containers, want 1", got, containers)
	}
	if got := testutil.ToFloat64(s.metrics.HoldRefusals.WithLabelValues(contract.RefusedPodLimit)); got != 0 {
		t.Errorf("%v requests refused for the pod's limit", got)
	}
	s.wantEvents(pod, contract.ReasonHoldStarted, contract.ReasonHoldReleased)
	var list eventsv1.EventList
	if err := s.env.Client.List(context.Background(), &list, client.InNamespace(s.ns)); err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, e := range list.Items {
		if e.Regarding.UID == pod.UID && e.Reason == contract.ReasonHoldStarted {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d HoldStarted events for one pod, want 1", started)
	}
}

// servingPod creates a pod whose application serves its target, registered
// healthy as the load balancer controller would.
func (s *scenario) servingPod(name string) (*corev1.Pod, albemu.Target) {
	s.t.Helper()
	pod := s.newPod(name)
	target := s.target(pod)
	s.serve(target)
	s.register(target, albemu.StateHealthy)
	return pod, target
}

// deregisterOncePolled waits until a hold reaches the watcher and the
// target has been polled, then deregisters it as the load balancer
// controller does when it sees the pod go.
func (s *scenario) deregisterOncePolled(target albemu.Target) {
	s.t.Helper()
	s.eventually("the hold reaches the watcher", func() bool { return testutil.ToFloat64(s.metrics.HoldsInFlight) == 1 })
	calls := s.emu.CallCount("DescribeTargetHealth")
	s.emuWait("a poll of the pod's target", func() bool { return s.emu.CallCount("DescribeTargetHealth") > calls })
	if err := s.emu.DeregisterTargets(s.tg, target); err != nil {
		s.t.Fatal(err)
	}
}
