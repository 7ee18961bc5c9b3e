package fakelbc

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/internal/lbc"
)

// TestEC2DeniedLeavesBindingUnreconciled: without the EC2 permission,
// defaultNetworkingManager.fetchEndpointSGs fails on the binding's first
// reconcile; reconcileWithIPTargetType still registers the targets but
// asks for a requeue (needNetworkingRequeue) with a FailedNetworkReconcile
// event, so status.observedGeneration is not written until EC2 answers.
func TestEC2DeniedLeavesBindingUnreconciled(t *testing.T) {
	f := setupWith(t, Options{Requeue: 50 * time.Millisecond})
	f.emu.SetActionFaults("DescribeSecurityGroups", albemu.Faults{Denied: true})
	// Created after the fault: a binding of its own.
	f.create(&lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "denied", Namespace: ns},
		Spec:       f.binding("web").Spec,
	})
	f.runPod("ready", "10.2.0.1", false, corev1.ContainersReady, corev1.PodReady)
	f.waitState("10.2.0.1", albemu.StateHealthy)
	// Several requeues, none of them writing the status.
	for range 3 {
		f.waitReconcile("denied", func(o outcome) bool { return o.requeue })
	}
	if og := f.binding("denied").Status.ObservedGeneration; og != nil {
		t.Fatalf("observedGeneration %d written while EC2 is denied", *og)
	}
	f.waitEvent("denied", EventFailedNetworkReconcile)

	f.emu.ClearFaults()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return f.binding("denied").Status.ObservedGeneration != nil, nil
	})
	if err != nil {
		t.Fatalf("observedGeneration never written once EC2 answered: %v", err)
	}
}

// waitEvent waits for an event of reason about the binding.
func (f *fixture) waitEvent(binding, reason string) {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var evs corev1.EventList
		if err := f.env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err
		}
		return slices.ContainsFunc(evs.Items, func(e corev1.Event) bool {
			return e.Reason == reason && e.InvolvedObject.Name == binding
		}), nil
	})
	if err != nil {
		f.t.Fatalf("no %s event for %s: %v", reason, binding, err)
	}
}

// TestCachedHealthyTargetMissesEarlyDeregistration: cachedTargetsManager
// keeps healthy targets for defaultTargetsCacheTTL (5 minutes) and
// re-describes only the others, so a healthy target deregistered by
// someone else, as albdrain's --early-deregister does, still counts as
// registered: the controller neither re-registers it nor notices, until
// the entry expires and a change of endpoints defeats the checkpoint (or,
// in the real controller, the deferred reconciler resets it 30-45 minutes
// later). Then it registers the still-ready pod again.
func TestCachedHealthyTargetMissesEarlyDeregistration(t *testing.T) {
	f := setupWith(t, Options{Requeue: 50 * time.Millisecond, TargetsCacheTTL: time.Hour})
	ctx := context.Background()
	f.runPod("ready", "10.3.0.1", true, corev1.ContainersReady)
	f.waitState("10.3.0.1", albemu.StateHealthy)
	f.waitGate("ready", func(c corev1.PodCondition) bool { return c.Status == corev1.ConditionTrue })

	api, _ := Clients(f.emu.URL())
	if _, err := api.DeregisterTargets(ctx, &awselbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(f.arn),
		Targets: []elbv2types.TargetDescription{{Id: aws.String("10.3.0.1"), Port: aws.Int32(8080)}}}); err != nil {
		t.Fatal(err)
	}
	f.drain()
	// A pod event naming the binding: a full reconcile, not a skipped one,
	// since the endpoints changed (another pod, not ready).
	f.runPod("other", "10.3.0.2", true)
	f.waitReconcile("web", func(o outcome) bool { return o.err == nil })
	if s := f.state("10.3.0.1"); s != albemu.StateDraining {
		t.Errorf("early-deregistered target %s, want still draining: the cache says healthy", s)
	}

	// Expire the cache as its TTL would.
	f.ctl.targets.mu.Lock()
	clear(f.ctl.targets.groups)
	f.ctl.targets.mu.Unlock()
	f.setCondition("other", corev1.ContainersReady, corev1.ConditionTrue)
	f.waitState("10.3.0.1", albemu.StateHealthy)
}

// TestPodEventsQueueGateNamedBindings: with EndpointSlices, a pod event
// queues only the bindings its readiness gates name, under either prefix
// (enqueueRequestsForPodEvent), and none for a change outside the pod
// cache's fields.
func TestPodEventsQueueGateNamedBindings(t *testing.T) {
	c := &Controller{opts: Options{EndpointSlices: true},
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]())}
	defer c.queue.ShutDown()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{ReadinessGates: []corev1.PodReadinessGate{
		{ConditionType: lbc.ReadinessGatePrefix + "web"},
		{ConditionType: legacyGatePrefix + "old"},
		{ConditionType: "example.com/other"},
		{ConditionType: lbc.ReadinessGatePrefix + "Not_A_Name"},
	}}}
	c.onPod(context.Background(), nil, pod)
	annotated := pod.DeepCopy()
	annotated.Annotations = map[string]string{"a": "b"}
	c.onPod(context.Background(), pod, annotated)
	var got []string
	for c.queue.Len() > 0 {
		k, _ := c.queue.Get()
		got = append(got, k.String())
		c.queue.Done(k)
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"ns/old", "ns/web"}, got); diff != "" {
		t.Errorf("queued (-want +got):\n%s", diff)
	}
	if workers != 3 {
		t.Errorf("%d workers, want the controller's default 3", workers)
	}
}

// TestTerminationDeregistersAtOnce: a gated pod's termination changes no
// field the controller's pod cache keeps (k8s.PodInfo), so it is the
// EndpointSlice event (enqueueRequestsForEndpointSlicesEvent) that
// deregisters it, not a requeue. Without EndpointSlices the stand-in's pod
// event stands in for that slice event; with an hour's requeue nothing
// else could deregister the target.
func TestTerminationDeregistersAtOnce(t *testing.T) {
	f := setupWith(t, Options{Requeue: time.Hour})
	f.runPod("gated", "10.4.0.1", true, corev1.ContainersReady)
	f.waitState("10.4.0.1", albemu.StateHealthy)
	// The gate turns True on a reconcile after the target is healthy: a
	// change to the pod's conditions names the binding.
	f.setCondition("gated", "example.com/touched", corev1.ConditionTrue)
	f.waitGate("gated", func(c corev1.PodCondition) bool { return c.Status == corev1.ConditionTrue })
	if err := f.env.Client.Delete(context.Background(), f.pod("gated")); err != nil {
		t.Fatal(err)
	}
	f.waitState("10.4.0.1", albemu.StateDraining)
}
