package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// oddNamespace is an opted-in namespace with two ALB ip backends: Service
// "web" sends to the container port named "http", Service "num" to port
// 8080 by number.
type oddNamespace struct{ ns string }

var oddSeq atomic.Int32

func newOddNamespace(t *testing.T) *oddNamespace {
	t.Helper()
	ctx := context.Background()
	o := &oddNamespace{ns: fmt.Sprintf("odd-pods-%d", oddSeq.Add(1))}
	// Registered first, so checked after the test's own cleanup.
	t.Cleanup(func() {
		if left := shared.Kubelet.Stopping(o.ns); len(left) > 0 {
			t.Errorf("pods %v of %s still terminating after the test: their helpers would report their holds' ends into a later test's counts", left, o.ns)
		}
	})
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.ns, Labels: map[string]string{contract.InjectKey: "enabled"}}}}
	for name, tp := range map[string]intstr.IntOrString{"web": intstr.FromString("http"), "num": intstr.FromInt32(8080)} {
		arn, err := shared.Emulator.CreateTargetGroup(albemu.TargetGroupSpec{Name: o.ns + "-" + name, Port: 8080})
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs,
			&corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.ns},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
					Ports: []corev1.ServicePort{{Port: 80, TargetPort: tp}}},
			},
			&lbc.TargetGroupBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.ns},
				Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: arn, TargetType: ptr.To(lbc.TargetTypeIP),
					ServiceRef: lbc.ServiceReference{Name: name, Port: intstr.FromInt32(80)}},
			})
	}
	for _, obj := range objs {
		if err := shared.Env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
	}
	// Pods get a binding's readiness gate only once the controller has
	// reconciled it; then their readiness means their target is healthy.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, name := range []string{"web", "num"} {
		if err := fakelbc.WaitReconciled(wctx, shared.Env.Client, client.ObjectKey{Namespace: o.ns, Name: name}); err != nil {
			t.Fatalf("binding %s never reconciled: %v", name, err)
		}
	}
	return o
}

func (o *oddNamespace) pod(app string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: app + "-", Namespace: o.ns, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

func serving(name string, port int32) corev1.Container {
	return corev1.Container{Name: name, Image: "app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}}}
}

func bare(name string) corev1.Container { return corev1.Container{Name: name, Image: "app:1"} }

func withPreStop(c corev1.Container, h corev1.LifecycleHandler) corev1.Container {
	c.Lifecycle = &corev1.Lifecycle{PreStop: &h}
	return c
}

// holds returns, by container name, the helper hold each container got.
func holds(t *testing.T, pod *corev1.Pod) map[string]contract.Spec {
	t.Helper()
	out := map[string]contract.Spec{}
	for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
			continue
		}
		cmd := c.Lifecycle.PreStop.Exec.Command
		if len(cmd) == 0 || cmd[0] != contract.HelperPath {
			continue
		}
		s, err := contract.Parse(cmd[1:])
		if err != nil {
			t.Fatalf("container %s: hold %q: %v", c.Name, cmd, err)
		}
		out[c.Name] = s
	}
	return out
}

// TestOddPods admits unusual pods through the real apiserver and webhook
// (as dry runs, so the apiserver validates the mutated pod without running
// it): each is admitted, and mutated the way its spec calls for.
func TestOddPods(t *testing.T) {
	o := newOddNamespace(t)
	maxHold := timings.MaxHold
	grace := func(p *corev1.Pod) int64 { return *p.Spec.TerminationGracePeriodSeconds }
	wantGrace := func(t *testing.T, p *corev1.Pod, atLeast time.Duration) {
		t.Helper()
		if g := grace(p); g < int64(atLeast/time.Second) {
			t.Errorf("grace period %ds, want at least %s", g, atLeast)
		}
	}
	wantHeld := func(t *testing.T, p *corev1.Pod, containers []string, ports []int32) map[string]contract.Spec {
		t.Helper()
		h := holds(t, p)
		if got := slices.Sorted(maps.Keys(h)); !slices.Equal(got, containers) {
			t.Errorf("held containers %v, want %v", got, containers)
		}
		for name, s := range h {
			if !slices.Equal(s.Ports, ports) || s.Mode != contract.ModeWait || s.MaxHold != maxHold {
				t.Errorf("container %s: hold %+v, want wait mode for %s on ports %v", name, s, maxHold, ports)
			}
		}
		if p.Labels[contract.ManagedLabel] != "true" {
			t.Errorf("pod not labelled managed")
		}
		if n := len(slices.DeleteFunc(slices.Clone(p.Spec.InitContainers), func(c corev1.Container) bool { return c.Name != contract.InitContainerName })); n != 1 {
			t.Errorf("%d %s init containers", n, contract.InitContainerName)
		}
		wantGrace(t, p, maxHold+timings.ShutdownBudget)
		return h
	}
	wantThen := func(t *testing.T, p *corev1.Pod, container string, want corev1.LifecycleHandler) {
		t.Helper()
		s, ok := holds(t, p)[container]
		if !ok || s.Then == nil {
			t.Fatalf("container %s: no hold with the container's own preStop after it", container)
		}
		// The helper's copy of a handler has the Kubernetes handler's JSON,
		// less tcpSocket, which the kubelet does not run as a preStop either.
		want.TCPSocket = nil
		got, _ := json.Marshal(s.Then)
		if wantJSON, _ := json.Marshal(want); string(got) != string(wantJSON) {
			t.Errorf("container %s: own preStop after the hold %s, want %s", container, got, wantJSON)
		}
	}
	exec := corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/drain", "--now", "a b"}}}
	tests := []struct {
		name  string
		pod   func() *corev1.Pod
		check func(*testing.T, *corev1.Pod)
	}{
		{"host network", func() *corev1.Pod {
			p := o.pod("web", serving("app", 8080))
			p.Spec.HostNetwork = true
			return p
		}, func(t *testing.T, p *corev1.Pod) {
			// Its address and sockets are the node's: skipped, and the reason recorded.
			if len(holds(t, p)) != 0 || p.Labels[contract.ManagedLabel] != "" || len(p.Spec.InitContainers) != 0 {
				t.Errorf("hostNetwork pod was mutated: %+v", p.Spec)
			}
			if got := p.Annotations[contract.SkippedKey]; !strings.Contains(got, "hostNetwork") {
				t.Errorf("skipped = %q, want the hostNetwork reason", got)
			}
		}},
		{"readiness gates opted out", func() *corev1.Pod {
			p := o.pod("web", serving("app", 8080))
			p.Annotations = map[string]string{contract.ReadinessGateKey: "disabled"}
			return p
		}, func(t *testing.T, p *corev1.Pod) {
			wantHeld(t, p, []string{"app"}, []int32{8080})
			if len(p.Spec.ReadinessGates) != 0 {
				t.Errorf("readiness gates %v on a pod that opted out", p.Spec.ReadinessGates)
			}
		}},
		{"no ports, named target port", func() *corev1.Pod { return o.pod("web", bare("app")) }, func(t *testing.T, p *corev1.Pod) {
			if len(holds(t, p)) != 0 || p.Labels[contract.ManagedLabel] != "" || len(p.Spec.InitContainers) != 0 {
				t.Errorf("pod serving no named port was mutated: %+v", p.Spec)
			}
		}},
		{"no ports, numeric target port", func() *corev1.Pod { return o.pod("num", bare("a"), bare("b")) }, func(t *testing.T, p *corev1.Pod) {
			wantHeld(t, p, []string{"a", "b"}, []int32{8080})
		}},
		{"named port", func() *corev1.Pod { return o.pod("web", serving("app", 9090), bare("logger")) }, func(t *testing.T, p *corev1.Pod) {
			wantHeld(t, p, []string{"app"}, []int32{9090})
		}},
		{"many containers", func() *corev1.Pod {
			var cs []corev1.Container
			for i := range 40 {
				cs = append(cs, bare(fmt.Sprintf("c%02d", i)))
			}
			return o.pod("num", cs...)
		}, func(t *testing.T, p *corev1.Pod) {
			var names []string
			for _, c := range p.Spec.Containers {
				names = append(names, c.Name)
			}
			wantHeld(t, p, names, []int32{8080})
			// Shared by every container: the helper's, and its trust volume.
			var vols []string
			for _, v := range p.Spec.Volumes {
				vols = append(vols, v.Name)
			}
			if want := []string{contract.VolumeName, contract.TrustVolumeName}; !slices.Equal(vols, want) {
				t.Errorf("volumes %v, want albdrain's %v", vols, want)
			}
		}},
		{"native sidecar serving the port", func() *corev1.Pod {
			p := o.pod("web", bare("app"))
			sidecar := serving("proxy", 8080)
			sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
			p.Spec.InitContainers = []corev1.Container{sidecar}
			return p
		}, func(t *testing.T, p *corev1.Pod) {
			wantHeld(t, p, []string{"app"}, []int32{8080})
			// Appended: only app containers run the helper, and they start
			// after every init container; the sidecar keeps its index.
			if len(p.Spec.InitContainers) != 2 || p.Spec.InitContainers[0].Name != "proxy" || p.Spec.InitContainers[1].Name != contract.InitContainerName {
				t.Errorf("init containers %v: want the sidecar, then albdrain's", p.Spec.InitContainers)
			}
		}},
		{"zero grace period", func() *corev1.Pod {
			p := o.pod("web", serving("app", 8080))
			p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
			return p
		}, func(t *testing.T, p *corev1.Pod) { wantHeld(t, p, []string{"app"}, []int32{8080}) }},
		{"huge grace period", func() *corev1.Pod {
			p := o.pod("web", serving("app", 8080))
			p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](10_000_000_000)
			return p
		}, func(t *testing.T, p *corev1.Pod) {
			wantHeld(t, p, []string{"app"}, []int32{8080})
			if grace(p) != 10_000_000_000 {
				t.Errorf("grace period changed to %d", grace(p))
			}
		}},
		{"own exec preStop", func() *corev1.Pod { return o.pod("web", withPreStop(serving("app", 8080), exec)) }, func(t *testing.T, p *corev1.Pod) {
			wantThen(t, p, "app", exec)
		}},
		{"own httpGet preStop to a named port", func() *corev1.Pod {
			return o.pod("web", withPreStop(serving("app", 8080), corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/stop", Port: intstr.FromString("http")}}))
		}, func(t *testing.T, p *corev1.Pod) {
			wantThen(t, p, "app", corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/stop", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}})
		}},
		{"own httpGet preStop to another host", func() *corev1.Pod {
			return o.pod("web", withPreStop(serving("app", 8080), corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.9", Path: "/drain", Port: intstr.FromInt32(81), Scheme: corev1.URISchemeHTTPS,
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Drain", Value: "1"}}}}))
		}, func(t *testing.T, p *corev1.Pod) {
			wantThen(t, p, "app", corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.9", Path: "/drain", Port: intstr.FromInt32(81), Scheme: corev1.URISchemeHTTPS,
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Drain", Value: "1"}}}})
		}},
		{"own sleep preStop", func() *corev1.Pod {
			return o.pod("web", withPreStop(serving("app", 8080), corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 7}}))
		}, func(t *testing.T, p *corev1.Pod) {
			wantThen(t, p, "app", corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 7}})
			// The pod's budget is its own preStop's sleep when that is
			// longer than the default budget; the hold comes on top.
			wantGrace(t, p, maxHold+max(7*time.Second, timings.ShutdownBudget))
		}},
		{"own tcpSocket preStop", func() *corev1.Pod {
			return o.pod("web", withPreStop(serving("app", 8080), corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}))
		}, func(t *testing.T, p *corev1.Pod) {
			// Kept as it was: the kubelet does not run a tcpSocket preStop
			// either, so the helper reports it as it would.
			wantThen(t, p, "app", corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}})
		}},
		{"sleep mode with an own sleep", func() *corev1.Pod {
			p := o.pod("web", withPreStop(serving("app", 8080), corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}))
			p.Annotations = map[string]string{contract.ModeKey: "sleep", contract.MaxHoldKey: "20"}
			return p
		}, func(t *testing.T, p *corev1.Pod) {
			pre := p.Spec.Containers[0].Lifecycle.PreStop
			if pre.Sleep == nil || pre.Sleep.Seconds != 25 {
				t.Errorf("preStop %+v, want one native sleep of 20+5 s", pre)
			}
			wantGrace(t, p, 20*time.Second+max(5*time.Second, timings.ShutdownBudget))
		}},
		{"sleep mode with an own exec", func() *corev1.Pod {
			p := o.pod("web", withPreStop(serving("app", 8080), exec))
			p.Annotations = map[string]string{contract.ModeKey: "sleep", contract.MaxHoldKey: "20"}
			return p
		}, func(t *testing.T, p *corev1.Pod) {
			s := holds(t, p)["app"]
			if s.Mode != contract.ModeSleep || s.MaxHold != 20*time.Second {
				t.Errorf("hold %+v, want the helper sleeping 20s", s)
			}
			wantThen(t, p, "app", exec)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pod()
			if err := shared.Env.Client.Create(context.Background(), p, client.DryRunAll); err != nil {
				t.Fatalf("the pod was refused: %v", err)
			}
			tc.check(t, p)
		})
	}
}

// An ephemeral container added to a running, held pod (kubectl debug) goes
// through the ephemeralcontainers subresource, which the webhook does not
// see: it must be accepted, leave the hold in place, and the pod must still
// terminate through its hold.
func TestEphemeralContainerOnAHeldPod(t *testing.T) {
	o := newOddNamespace(t)
	ctx := context.Background()
	c := shared.Env.Client
	pod := o.pod("web", serving("app", 8080))
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if len(holds(t, pod)) != 1 {
		t.Fatalf("pod not held: %+v", pod.Spec.Containers[0].Lifecycle)
	}
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, key, pod)
		return err == nil && ready(pod), err
	})
	if err != nil {
		t.Fatalf("pod never became ready behind the ALB: %v", err)
	}
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox:1", Command: []string{"sh"}, Stdin: true, TTY: true},
		TargetContainerName:      "app",
	})
	if err := c.SubResource("ephemeralcontainers").Update(ctx, pod); err != nil {
		t.Fatalf("adding an ephemeral container: %v", err)
	}
	var got corev1.Pod
	if err := c.Get(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.EphemeralContainers) != 1 || len(holds(t, &got)) != 1 || got.Labels[contract.ManagedLabel] != "true" {
		t.Fatalf("after adding an ephemeral container: ephemeral %v, holds %v, labels %v", got.Spec.EphemeralContainers, holds(t, &got), got.Labels)
	}

	if err := c.Delete(ctx, &got); err != nil {
		t.Fatal(err)
	}
	term, err := terminated(&got)
	if err != nil {
		t.Fatal(err)
	}
	// Without client traffic the pod's quiet period is its longest, which
	// the deregistration delay's bound may cut short: either way the hold
	// ended after deregistration began.
	out := ""
	if len(term.Hooks) == 1 {
		out = term.Hooks[0].Output
	}
	released := strings.Contains(out, "outcome="+string(contract.OutcomeQuiet)) || strings.Contains(out, "outcome="+string(contract.OutcomeBound))
	if len(term.Hooks) != 1 || term.Hooks[0].Err != "" || term.Killed || !released {
		t.Errorf("termination %+v: want the hold released once deregistering, quiet or at its bound", term)
	}
}

// terminated waits for the kubelet to end pod's termination, its preStop
// hooks included, which the pod's grace period bounds.
func terminated(pod *corev1.Pod) (kubelet.Termination, error) {
	within := time.Minute
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		within += time.Duration(*g) * time.Second
	}
	var term kubelet.Termination
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, within, true, func(context.Context) (bool, error) {
		i := slices.IndexFunc(shared.Kubelet.Terminations(), func(tm kubelet.Termination) bool { return tm.UID == pod.UID })
		if i >= 0 {
			term = shared.Kubelet.Terminations()[i]
		}
		return i >= 0, nil
	})
	if err != nil {
		return term, fmt.Errorf("pod %s never terminated: %w", pod.Name, err)
	}
	return term, nil
}
