package fakelbc

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/lbc"
)

const ns = "default"

type fixture struct {
	t   *testing.T
	env *kubetest.Env
	emu *albemu.Emulator
	arn string
	ctl *Controller
	// reconciles receives every reconcile's outcome.
	reconciles chan outcome
}

// outcome is one finished reconcile.
type outcome struct {
	key     types.NamespacedName
	requeue bool
	err     error
}

func setup(t *testing.T) *fixture { return setupWith(t, Options{Requeue: 50 * time.Millisecond}) }

// setupWith starts the controller with o (clients filled in), a Ready
// node "node-1" in zone us-east-1a, and Service "web" with binding "web".
func setupWith(t *testing.T, o Options) *fixture {
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD())
	// The pods here have no server behind them: non-loopback targets pass
	// health checks without being contacted.
	emu := albemu.NewForTest(t, albemu.Options{AllowNonLoopbackTargets: true})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{
		Name: "web", Port: 8080, DeregistrationDelay: 5 * time.Second,
		HealthCheck: albemu.HealthCheck{Interval: 100 * time.Millisecond, Timeout: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, env: env, emu: emu, arn: arn, reconciles: make(chan outcome, 1000)}
	f.node("node-1", corev1.ConditionTrue)
	o.ELBv2, o.EC2 = Clients(emu.URL())
	o.observe = func(key types.NamespacedName, requeue bool, err error) {
		select {
		case f.reconciles <- outcome{key, requeue, err}:
		default: // a test that stopped listening
		}
	}
	c, err := Start(context.Background(), env.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	f.ctl = c
	f.create(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	})
	f.create(&lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: arn, TargetType: ptr.To(lbc.TargetTypeIP),
			ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}},
	})
	return f
}

// node creates a node with the given readiness.
func (f *fixture) node(name string, ready corev1.ConditionStatus) {
	f.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelTopologyZone: "us-east-1a"}}}
	f.create(n)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if err := f.env.Client.Status().Update(context.Background(), n); err != nil {
		f.t.Fatal(err)
	}
}

// waitReconcile waits for a reconcile of binding name that satisfies ok.
func (f *fixture) waitReconcile(name string, ok func(outcome) bool) outcome {
	f.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case o := <-f.reconciles:
			if o.key.Name == name && ok(o) {
				return o
			}
		case <-timeout:
			f.t.Fatalf("no reconcile of %s as wanted", name)
		}
	}
}

// drain forgets the reconciles so far.
func (f *fixture) drain() {
	for {
		select {
		case <-f.reconciles:
		default:
			return
		}
	}
}

func (f *fixture) create(obj client.Object) {
	f.t.Helper()
	if err := f.env.Client.Create(context.Background(), obj); err != nil {
		f.t.Fatalf("create %s: %v", obj.GetName(), err)
	}
}

// runPod creates a pod bound to a node (so deletion is graceful and leaves
// it terminating) and reports it running at ip with the given conditions.
func (f *fixture) runPod(name, ip string, gated bool, conds ...corev1.PodConditionType) {
	f.t.Helper()
	f.runPodOn(name, ip, "node-1", gated, conds...)
}

// runPodOn is runPod on the given node.
func (f *fixture) runPodOn(name, ip, node string, gated bool, conds ...corev1.PodConditionType) {
	f.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
	if gated {
		pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: lbc.ReadinessGatePrefix + "web"}}
	}
	f.create(pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	for _, c := range conds {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
	}
	if err := f.env.Client.Status().Update(context.Background(), pod); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) pod(name string) *corev1.Pod {
	f.t.Helper()
	var pod corev1.Pod
	if err := f.env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &pod); err != nil {
		f.t.Fatal(err)
	}
	return &pod
}

func (f *fixture) waitState(ip, state string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.emu.WaitTargetState(ctx, f.arn, albemu.Target{ID: ip, Port: 8080}, state); err != nil {
		f.t.Fatalf("target %s never %s: %v", ip, state, err)
	}
}

func (f *fixture) state(ip string) string {
	f.t.Helper()
	h, err := f.emu.TargetHealth(f.arn, albemu.Target{ID: ip, Port: 8080})
	if err != nil {
		f.t.Fatal(err)
	}
	return h[0].State
}

// gateOf is the pod's readiness-gate condition of binding "web".
func (f *fixture) gateOf(pod string) corev1.PodCondition {
	f.t.Helper()
	if c := condition(f.pod(pod), lbc.ReadinessGatePrefix+"web"); c != nil {
		return *c
	}
	return corev1.PodCondition{}
}

// waitGate waits until the pod's gate condition satisfies ok.
func (f *fixture) waitGate(pod string, ok func(corev1.PodCondition) bool) corev1.PodCondition {
	f.t.Helper()
	var c corev1.PodCondition
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		c = f.gateOf(pod)
		return ok(c), nil
	})
	if err != nil {
		f.t.Fatalf("pod %s: gate %+v never as wanted: %v", pod, c, err)
	}
	return c
}

// setCondition merges one condition into the pod's status, leaving the
// others (the controller's gate among them) alone.
func (f *fixture) setCondition(pod string, t corev1.PodConditionType, v corev1.ConditionStatus) {
	f.t.Helper()
	body, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{{"type": t, "status": v}}}})
	if err != nil {
		f.t.Fatal(err)
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pod}}
	if err := f.env.Client.Status().Patch(context.Background(), p, client.RawPatch(types.StrategicMergePatchType, body)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) binding(name string) *lbc.TargetGroupBinding {
	f.t.Helper()
	var tgb lbc.TargetGroupBinding
	if err := f.env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &tgb); err != nil {
		f.t.Fatal(err)
	}
	return &tgb
}

// TestRegistrationFollowsEndpoints: with endpoints derived from pods, a
// not-ready pod with ready containers on a Ready node is registered with
// or without a gate (backend.defaultEndpointResolver.
// resolvePodEndpointsWithEndpointsData), and a terminating one is
// deregistered.
func TestRegistrationFollowsEndpoints(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.runPod("plain", "10.0.0.2", false, corev1.ContainersReady)
	f.runPod("gated", "10.0.0.1", true, corev1.ContainersReady)
	f.runPod("starting", "10.0.0.3", false)
	f.waitState("10.0.0.1", albemu.StateHealthy)
	f.waitState("10.0.0.2", albemu.StateHealthy)
	f.waitGate("gated", func(c corev1.PodCondition) bool { return c.Status == corev1.ConditionTrue })
	if s := f.state("10.0.0.3"); s != albemu.StateUnused {
		t.Errorf("pod with containers not ready: target %s, want unused", s)
	}
	if err := f.env.Client.Delete(ctx, f.pod("gated")); err != nil {
		t.Fatal(err)
	}
	f.waitState("10.0.0.1", albemu.StateDraining)
}

// TestReactsWithoutLag: by default the stand-in queues a binding the moment
// its informer reports the event, as controller-runtime's handlers do for
// targetGroupBindingReconciler (queue.Add, no delay); a lag is drawn only
// when a test asks for one.
func TestReactsWithoutLag(t *testing.T) {
	c := &Controller{rng: rand.New(rand.NewPCG(1, 2))}
	if d := c.lag(); d != 0 {
		t.Errorf("default reaction lag %s, want 0", d)
	}
	c.opts.MinLag, c.opts.MaxLag = 10*time.Millisecond, 20*time.Millisecond
	for range 100 {
		if d := c.lag(); d < c.opts.MinLag || d > c.opts.MaxLag {
			t.Fatalf("lag %s outside %s-%s", d, c.opts.MinLag, c.opts.MaxLag)
		}
	}
}

// TestGateWaitsForRequeue: a gated pod's gate is re-read only on the
// requeue after Options.Requeue (reconcileWithIPTargetType returns
// NewRequeueNeededAfter(requeueDuration) while anyPodNeedFurtherProbe) or
// when an event names the binding (enqueueRequestsForPodEvent). With an
// hour's requeue the gate stays False after the target is healthy, until
// the pod changes: that wait is what gates cost a rollout.
func TestGateWaitsForRequeue(t *testing.T) {
	f := setupWith(t, Options{Requeue: time.Hour})
	ctx := context.Background()
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	tgt, err := albemu.ParseTarget(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gated", Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "node-1", ReadinessGates: []corev1.PodReadinessGate{{ConditionType: lbc.ReadinessGatePrefix + "web"}},
			Containers: []corev1.Container{{Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: tgt.Port}}}}},
	}
	f.create(pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: tgt.ID, PodIPs: []corev1.PodIP{{IP: tgt.ID}},
		Conditions: []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}}}
	if err := f.env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	// The first condition is Elb.RegistrationInProgress, then ELB's own
	// reasons as the health checks run (TestGateConditions checks each).
	if c := f.waitGate("gated", func(c corev1.PodCondition) bool { return c.Status != "" }); c.Status != corev1.ConditionFalse || !strings.HasPrefix(c.Reason, "Elb.") {
		t.Errorf("gate of a target being registered: %+v", c)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f.emu.WaitTargetState(wctx, f.arn, tgt, albemu.StateUnhealthy); err != nil {
		t.Fatal(err)
	}
	// Each gate patch is a pod event that queues the binding again; the
	// reconcile after the patch that records the failing checks changes
	// nothing, and then only the requeue or a new event would.
	touch := func(v corev1.ConditionStatus) { f.setCondition("gated", "example.com/touched", v) }
	touch(corev1.ConditionFalse)
	// A reconcile that finishes after one that already saw the failing
	// reason on the pod came after the patch: it found nothing to change.
	settled := false
	f.waitReconcile("web", func(outcome) bool {
		done := settled
		settled = f.gateOf("gated").Reason == "Target.ResponseCodeMismatch"
		return done
	})
	f.drain()

	healthy.Store(true)
	if err := f.emu.WaitTargetState(wctx, f.arn, tgt, albemu.StateHealthy); err != nil {
		t.Fatal(err)
	}
	if g := f.gateOf("gated"); g.Status == corev1.ConditionTrue {
		t.Fatalf("gate True without a reconcile since the target turned healthy: %+v", g)
	}
	touch(corev1.ConditionTrue)
	got := f.waitGate("gated", func(c corev1.PodCondition) bool { return c.Status == corev1.ConditionTrue })
	if got.Reason != "" || got.Message != "" {
		t.Errorf("healthy gate has reason %q message %q, want none (a healthy target has no reason)", got.Reason, got.Message)
	}
}

// TestGateConditions: setGate follows updateTargetHealthPodConditionForPod
// and calculateReadinessGateTransition: Unknown without health, False
// with ELB's reason and description, True when healthy; a change of reason
// alone is patched, keeping the transition time.
func TestGateConditions(t *testing.T) {
	f := setupWith(t, Options{Requeue: time.Hour})
	ctx := context.Background()
	f.runPod("gated", "10.9.0.1", true)
	gate := corev1.PodConditionType(lbc.ReadinessGatePrefix + "web")
	steps := []struct {
		health      *elbv2types.TargetHealth
		want        corev1.PodCondition
		wantRequeue bool
	}{
		{nil, corev1.PodCondition{Status: corev1.ConditionUnknown}, true},
		{registering, corev1.PodCondition{Status: corev1.ConditionFalse, Reason: "Elb.RegistrationInProgress", Message: "Target registration is in progress"}, true},
		{&elbv2types.TargetHealth{State: "initial", Reason: "Elb.InitialHealthChecking", Description: aws.String("Initial health checks in progress")},
			corev1.PodCondition{Status: corev1.ConditionFalse, Reason: "Elb.InitialHealthChecking", Message: "Initial health checks in progress"}, true},
		{&elbv2types.TargetHealth{State: "healthy"}, corev1.PodCondition{Status: corev1.ConditionTrue}, false},
	}
	var lastTransition metav1.Time
	for i, s := range steps {
		requeue, err := f.ctl.setGate(ctx, f.pod("gated"), gate, s.health)
		if err != nil {
			t.Fatal(err)
		}
		got := f.gateOf("gated")
		if requeue != s.wantRequeue {
			t.Errorf("step %d: requeue %v, want %v", i, requeue, s.wantRequeue)
		}
		if i == 2 && !got.LastTransitionTime.Equal(&lastTransition) {
			t.Errorf("step %d: reason change moved the transition time", i)
		}
		lastTransition = got.LastTransitionTime
		got.LastTransitionTime, s.want.Type = metav1.Time{}, gate
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
	}
}

// TestDeletedBindingReleasesGates: deleting a binding deregisters its
// targets, sets every gate naming it True (updatePodAsHealthyForDeletedTGB)
// and only then drops the finalizer (cleanupTargetGroupBinding).
func TestDeletedBindingReleasesGates(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.runPod("ready", "10.0.0.1", false, corev1.ContainersReady, corev1.PodReady)
	// Containers not ready: never registered, its gate never set.
	f.runPod("stuck", "10.0.0.2", true)
	f.waitState("10.0.0.1", albemu.StateHealthy)
	if err := f.env.Client.Delete(ctx, f.binding("web")); err != nil {
		t.Fatal(err)
	}
	g := f.waitGate("stuck", func(c corev1.PodCondition) bool { return c.Status == corev1.ConditionTrue })
	if g.Message != "Target Group Binding is deleted" {
		t.Errorf("gate message %q", g.Message)
	}
	f.waitState("10.0.0.1", albemu.StateDraining)
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := f.env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &lbc.TargetGroupBinding{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatalf("binding never released by its finalizer: %v", err)
	}
}

// TestMetadataAndStatus: a reconcile that needs no requeue adds the
// finalizer elbv2.k8s.aws/resources, the checkpoint annotations
// (SaveTGBReconcileCheckpoint), status.observedGeneration
// (updateTargetGroupBindingStatus) and a SuccessfullyReconciled event,
// anew after each spec change; the calls carry the controller's whole
// User-Agent (overrideUserAgentMiddleware).
func TestMetadataAndStatus(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	observed := func(want int64) *lbc.TargetGroupBinding {
		t.Helper()
		var tgb *lbc.TargetGroupBinding
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			tgb = f.binding("web")
			og := tgb.Status.ObservedGeneration
			return tgb.Generation == want && og != nil && *og == want && tgb.Annotations[CheckpointKey] != "", nil
		})
		if err != nil {
			t.Fatalf("generation %d never observed: %+v: %v", want, tgb, err)
		}
		return tgb
	}
	tgb := observed(1)
	if !slices.Contains(tgb.Finalizers, Finalizer) || tgb.Annotations[CheckpointTimeKey] == "" {
		t.Errorf("finalizers %v, annotations %v", tgb.Finalizers, tgb.Annotations)
	}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var evs corev1.EventList
		if err := f.env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err
		}
		return slices.ContainsFunc(evs.Items, func(e corev1.Event) bool {
			return e.Reason == EventSuccessfullyReconciled && e.InvolvedObject.Name == "web" && e.Message == "Successfully reconciled"
		}), nil
	})
	if err != nil {
		t.Fatalf("no SuccessfullyReconciled event: %v", err)
	}
	tgb.Spec.ServiceRef.Port = intstr.FromString("http")
	if err := f.env.Client.Update(ctx, tgb); err != nil {
		t.Fatal(err)
	}
	observed(2)
	for _, c := range f.emu.Calls() {
		if c.UserAgent != UserAgent {
			t.Errorf("%s sent User-Agent %q, want %q", c.Action, c.UserAgent, UserAgent)
		}
	}
}

// TestNoTargetTypeRefused: defaultResourceManager.Reconcile refuses a
// binding without spec.targetType; the controller's webhook would have
// defaulted it, and the stand-in runs none, so the binding stays
// unreconciled with a FailedReconcile event.
func TestNoTargetTypeRefused(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.create(&lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "untyped", Namespace: ns},
		Spec:       lbc.TargetGroupBindingSpec{TargetGroupARN: f.arn, ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}},
	})
	o := f.waitReconcile("untyped", func(o outcome) bool { return o.err != nil })
	if !strings.Contains(o.err.Error(), "targetType is not specified") {
		t.Errorf("error %v", o.err)
	}
	if og := f.binding("untyped").Status.ObservedGeneration; og != nil {
		t.Errorf("refused binding has observedGeneration %d", *og)
	}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var evs corev1.EventList
		if err := f.env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err
		}
		return slices.ContainsFunc(evs.Items, func(e corev1.Event) bool {
			return e.Reason == EventFailedReconcile && e.InvolvedObject.Name == "untyped"
		}), nil
	})
	if err != nil {
		t.Fatalf("no FailedReconcile event: %v", err)
	}
}
