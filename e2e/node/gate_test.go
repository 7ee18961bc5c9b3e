package node_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/internal/lbc"
)

// TestReadinessGateOnRealNode runs the load balancer controller's stand-in
// on EndpointSlices against pods of the real node: the real kubelet keeps a
// pod with the binding's readiness gate NotReady until the stand-in reports
// its target healthy in the emulator, traffic then reaches the pod through
// the emulator, and the pod's deletion deregisters its target.
func TestReadinessGateOnRealNode(t *testing.T) {
	r := startRealNode(t, nodeSetup{targetGroupBindings: true, endpointSlices: true})
	env, n := r.env, r.n
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	emu := r.emulator(t, albemu.Options{DefaultDeregistrationDelay: 2 * time.Second})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web", Port: 8080, HealthCheck: albemu.HealthCheck{
		Interval: 500 * time.Millisecond, Timeout: 400 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2,
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.loadBalancerController(t, emu, fakelbc.Options{Requeue: 100 * time.Millisecond})

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	tgb := &lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: arn, TargetType: ptr.To(lbc.TargetTypeIP),
			ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}},
	}
	gate := corev1.PodConditionType(lbc.ReadinessGatePrefix + tgb.Name)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeName:                      n.Name,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			ReadinessGates:                []corev1.PodReadinessGate{{ConditionType: gate}},
			Containers: []corev1.Container{{
				Name: "app", Image: podappRef, ImagePullPolicy: corev1.PullNever,
				Args:  []string{"-linger=2s"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
	for _, obj := range []client.Object{svc, tgb, pod} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	// Ready only once the gate is True: the kubelet's Ready condition waits for it.
	waitPod(ctx, t, env.Client, pod, func(p *corev1.Pod) bool {
		ready, gated := false, false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
			gated = gated || (c.Type == gate && c.Status == corev1.ConditionTrue)
		}
		if ready && !gated {
			t.Fatalf("pod Ready before its readiness gate was True: %+v", p.Status.Conditions)
		}
		return ready
	})
	target := albemu.Target{ID: pod.Status.PodIP, Port: 8080}
	if h, err := emu.TargetHealth(arn, target); err != nil || h[0].State != albemu.StateHealthy {
		t.Fatalf("pod Ready while its target is %+v (%v), want healthy", h, err)
	}
	expectServedThrough(t, emu, arn, pod.Name)

	if err := env.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := emu.WaitTargetState(ctx, arn, target, albemu.StateDraining); err != nil {
		t.Fatalf("target of the deleted pod never draining: %v", err)
	}
	waitGone(ctx, t, env.Client, pod)
}
