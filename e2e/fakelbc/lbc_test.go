package fakelbc

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	corev1 "k8s.io/api/core/v1"
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
}

func setup(t *testing.T) *fixture { return setupWith(t, false) }

// setupWith starts the controller, reading EndpointSlices when endpointSlices is set.
func setupWith(t *testing.T, endpointSlices bool) *fixture {
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
	api := elbv2.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("id", "secret", "")},
		func(o *elbv2.Options) { o.BaseEndpoint = aws.String(emu.URL()) })
	c, err := Start(context.Background(), env.Config, Options{ELBv2: api, MinLag: 0, MaxLag: 50 * time.Millisecond, HealthPoll: 50 * time.Millisecond, EndpointSlices: endpointSlices})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	f := &fixture{t: t, env: env, emu: emu, arn: arn}
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
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{
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

func TestRegistrationFollowsReadinessAndGates(t *testing.T) {
	f := setup(t)
	ctx := context.Background()

	// Not ready and no gate: the controller must not register it.
	f.runPod("plain", "10.0.0.2", false, corev1.ContainersReady)
	// Not ready, but gated with ready containers: registered, so that the
	// gate can ever become True.
	f.runPod("gated", "10.0.0.1", true, corev1.ContainersReady)
	f.waitState("10.0.0.1", albemu.StateHealthy)
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return conditionTrue(f.pod("gated"), lbc.ReadinessGatePrefix+"web"), nil
	})
	if err != nil {
		t.Fatalf("readiness gate never set True: %v", err)
	}
	// Both pods were in the cache when the gated one was registered.
	if s := f.state("10.0.0.2"); s != albemu.StateUnused {
		t.Errorf("pod without gate and not ready: target %s, want unused", s)
	}

	plain := f.pod("plain")
	plain.Status.Conditions = append(plain.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
	if err := f.env.Client.Status().Update(ctx, plain); err != nil {
		t.Fatal(err)
	}
	f.waitState("10.0.0.2", albemu.StateHealthy)

	if err := f.env.Client.Delete(ctx, f.pod("gated")); err != nil {
		t.Fatal(err)
	}
	f.waitState("10.0.0.1", albemu.StateDraining)
}

// TestStatusFollowsGeneration: like the real controller, the stand-in
// records the generation it reconciled, anew after each spec change.
func TestStatusFollowsGeneration(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	observed := func(want int64) {
		t.Helper()
		var tgb lbc.TargetGroupBinding
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := f.env.Client.Get(ctx, key, &tgb); err != nil {
				return false, err
			}
			og := tgb.Status.ObservedGeneration
			return tgb.Generation == want && og != nil && *og == want, nil
		})
		if err != nil {
			t.Fatalf("generation %d never observed: status %+v at generation %d: %v", want, tgb.Status, tgb.Generation, err)
		}
	}
	observed(1)
	var tgb lbc.TargetGroupBinding
	if err := f.env.Client.Get(ctx, key, &tgb); err != nil {
		t.Fatal(err)
	}
	tgb.Spec.ServiceRef.Port = intstr.FromString("http")
	if err := f.env.Client.Update(ctx, &tgb); err != nil {
		t.Fatal(err)
	}
	observed(2)
}
