package node_test

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// TestEndpointSlicesAndEmulatorOnRealNode checks what the load balancer
// controller's stand-in and the ALB emulator rely on when pods run on the
// real node: the EndpointSlice controller publishes the pod's own address,
// turns it ready:false, serving:true, terminating:true once the pod is
// deleted, and the emulator reaches the pod on the test's subnet.
func TestEndpointSlicesAndEmulatorOnRealNode(t *testing.T) {
	r := startRealNode(t, nodeSetup{endpointSlices: true})
	env, n := r.env, r.n
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeName:                      n.Name,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			Containers: []corev1.Container{{
				Name: "app", Image: podappRef, ImagePullPolicy: corev1.PullNever,
				// Keeps serving a while after SIGTERM, so the terminating endpoint can be seen.
				Args:  []string{"-linger=3s"},
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitPod(ctx, t, env.Client, pod, func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
	podIP := pod.Status.PodIP
	if !n.Net.PodRange.Contains(mustAddr(t, podIP)) {
		t.Fatalf("pod IP %s is outside the node's pod range %s", podIP, n.Net.PodRange)
	}
	waitEndpoint(ctx, t, env.Client, podIP, discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)})

	// The emulator registers and reaches the pod on the test's subnet.
	emu := r.emulator(t, albemu.Options{PropagationLag: 0})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web", HealthCheck: albemu.HealthCheck{
		Interval: 500 * time.Millisecond, Timeout: 400 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2,
	}})
	if err != nil {
		t.Fatal(err)
	}
	target := albemu.Target{ID: podIP, Port: 8080}
	if err := emu.RegisterTargets(arn, target); err != nil {
		t.Fatal(err)
	}
	if err := emu.WaitTargetState(ctx, arn, target, albemu.StateHealthy); err != nil {
		t.Fatal(err)
	}
	expectServedThrough(t, emu, arn, pod.Name)

	if err := env.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitEndpoint(ctx, t, env.Client, podIP, discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)})
	waitGone(ctx, t, env.Client, pod)
}

// waitEndpoint waits for an EndpointSlice endpoint with ip to show want.
func waitEndpoint(ctx context.Context, t *testing.T, c client.Client, ip string, want discoveryv1.EndpointConditions) {
	t.Helper()
	var last string
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var slices discoveryv1.EndpointSliceList
		if err := c.List(ctx, &slices, client.InNamespace("default"), client.MatchingLabels{discoveryv1.LabelServiceName: "web"}); err != nil {
			return false, err
		}
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if len(ep.Addresses) == 0 || ep.Addresses[0] != ip {
					continue
				}
				got := ep.Conditions
				last = conditionsString(got)
				if last == conditionsString(want) {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("endpoint %s never became %s (last %s): %v", ip, conditionsString(want), last, err)
	}
}

func conditionsString(c discoveryv1.EndpointConditions) string {
	b := func(p *bool) string {
		if p == nil {
			return "nil"
		}
		return strconv.FormatBool(*p)
	}
	return "ready:" + b(c.Ready) + " serving:" + b(c.Serving) + " terminating:" + b(c.Terminating)
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		t.Fatalf("pod IP %q is not IPv4: %v", s, err)
	}
	return a
}

// expectServedThrough sends one request through a listener of the
// emulated ALB on target group arn and expects podName to answer it.
func expectServedThrough(t *testing.T, emu *albemu.Emulator, arn, podName string) {
	t.Helper()
	ln, err := emu.AddListener(arn, "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ln.URL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != podName {
		t.Errorf("through the emulator: %d %q, want 200 %q", resp.StatusCode, body, podName)
	}
}
