package inject

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

var waitArgs = []string{"wait", "--max-hold=5m30s", "--fallback=30s", "--quiet-period=3s", "--quiet-gaps=15", "--quiet-period-max=30s", "--shutdown-budget=30s"}

func withArgs(extra ...string) *corev1.LifecycleHandler {
	return execHold(append(append([]string{}, waitArgs...), extra...)...)
}

func nativeSidecar(name string, preStop *corev1.LifecycleHandler, ports ...corev1.ContainerPort) corev1.Container {
	c := container(name, ports...)
	c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	if preStop != nil {
		c.Lifecycle = &corev1.Lifecycle{PreStop: preStop}
	}
	return c
}

var envoyDrain = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/drain-listeners"}}}

// TestApplyNativeSidecarPreStop: a native sidecar's own preStop runs as soon
// as the pod is deleted, so it is moved behind a hold like an app
// container's.
func TestApplyNativeSidecarPreStop(t *testing.T) {
	tests := []applyCase{
		{
			name: "sidecar serving the port: its drain hook runs after the hold",
			pod: func() *corev1.Pod {
				p := podWith(container("app"))
				p.Spec.InitContainers = []corev1.Container{nativeSidecar("envoy", envoyDrain, port("proxy", 9000))}
				return p
			}(),
			targets: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("proxy"), TargetGroupBinding: "k8s-default-web-abc"}},
			want: view{Injected: true, Managed: true, Inits: []string{"envoy", "albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360), Sidecars: []string{"envoy"},
				PreStops: map[string]*corev1.LifecycleHandler{
					"app":   withArgs("--port=9000"),
					"envoy": withArgs("--port=9000", `--then={"exec":{"command":["/bin/drain-listeners"]}}`),
				}},
		},
		{
			name: "sidecar the served app depends on: its drain hook runs after the hold",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Spec.InitContainers = []corev1.Container{nativeSidecar("log-shipper", envoyDrain)}
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"log-shipper", "albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360), Sidecars: []string{"log-shipper"},
				PreStops: map[string]*corev1.LifecycleHandler{
					"app":         withArgs("--port=8080"),
					"log-shipper": withArgs("--port=8080", `--then={"exec":{"command":["/bin/drain-listeners"]}}`),
				}},
		},
		{
			name: "sidecar's own sleep counts toward the budget",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Spec.InitContainers = []corev1.Container{nativeSidecar("envoy", &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 45}})}
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"envoy", "albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](375), Sidecars: []string{"envoy"},
				PreStops: map[string]*corev1.LifecycleHandler{
					"app":   execHold("wait", "--max-hold=5m30s", "--fallback=30s", "--quiet-period=3s", "--quiet-gaps=15", "--quiet-period-max=30s", "--shutdown-budget=45s", "--port=8080"),
					"envoy": execHold("wait", "--max-hold=5m30s", "--fallback=30s", "--quiet-period=3s", "--quiet-gaps=15", "--quiet-period-max=30s", "--shutdown-budget=45s", "--port=8080", `--then={"sleep":{"seconds":45}}`),
				}},
		},
		{
			name: "sleep mode: the sidecar's sleep follows the hold natively",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Spec.InitContainers = []corev1.Container{nativeSidecar("envoy", &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}})}
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			opts:    func(o *Options) { o.Mode = contract.ModeSleep },
			want: view{Injected: true, Managed: true, Inits: []string{"envoy"}, Gates: []string{gate}, Grace: ptr.To[int64](60), Sidecars: []string{"envoy"},
				PreStops: map[string]*corev1.LifecycleHandler{
					"app":   {Sleep: &corev1.SleepAction{Seconds: 30}},
					"envoy": {Sleep: &corev1.SleepAction{Seconds: 35}},
				}},
		},
		{
			name: "sidecar without a preStop and an ordinary init container are left alone",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Spec.InitContainers = []corev1.Container{
					nativeSidecar("envoy", nil),
					{Name: "migrate", Image: "app:1", Lifecycle: &corev1.Lifecycle{PreStop: envoyDrain}},
				}
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"envoy", "migrate", "albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": withArgs("--port=8080"), "migrate": envoyDrain}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkApply(t, tc.pod, tc.targets, tc.opts, tc.want) })
	}
}

// TestApplyReinvocation: a webhook running after albdrain replaces or drops
// a held container's preStop; albdrain's second pass holds it again, with
// the new preStop after the hold, and a third pass changes nothing.
func TestApplyReinvocation(t *testing.T) {
	setPreStop := func(name string, h *corev1.LifecycleHandler) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
				for i := range cs {
					if cs[i].Name == name {
						cs[i].Lifecycle = &corev1.Lifecycle{PreStop: h}
					}
				}
			}
		}
	}
	platform := &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/platform-drain"}}}
	tests := []struct {
		name  string
		pod   func() *corev1.Pod
		opts  func(*Options)
		later func(*corev1.Pod)
		want  view
	}{
		{
			name:  "hold replaced by an exec: held again, the exec after it",
			pod:   func() *corev1.Pod { return podWith(container("app", port("http", 8080))) },
			later: setPreStop("app", platform),
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": withArgs("--port=8080", `--then={"exec":{"command":["/bin/platform-drain"]}}`)}},
		},
		{
			name:  "hold removed: held again",
			pod:   func() *corev1.Pod { return podWith(container("app", port("http", 8080))) },
			later: func(p *corev1.Pod) { p.Spec.Containers[0].Lifecycle = nil },
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": withArgs("--port=8080")}},
		},
		{
			name:  "sleep-mode hold replaced by a short sleep: held again, the sleep after it",
			pod:   func() *corev1.Pod { return podWith(container("app", port("http", 8080))) },
			opts:  func(o *Options) { o.Mode = contract.ModeSleep },
			later: setPreStop("app", &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}),
			want: view{Injected: true, Managed: true, Gates: []string{gate}, Grace: ptr.To[int64](60),
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 35}}}},
		},
		{
			name: "sidecar's hold replaced: held again",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Spec.InitContainers = []corev1.Container{nativeSidecar("envoy", envoyDrain)}
				return p
			},
			later: setPreStop("envoy", platform),
			want: view{Injected: true, Managed: true, Inits: []string{"envoy", "albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360), Sidecars: []string{"envoy"},
				PreStops: map[string]*corev1.LifecycleHandler{
					"app":   withArgs("--port=8080"),
					"envoy": withArgs("--port=8080", `--then={"exec":{"command":["/bin/platform-drain"]}}`),
				}},
		},
		{
			name:  "nothing changed in between: nothing changes",
			pod:   func() *corev1.Pod { return podWith(container("app", port("http", 8080))) },
			later: func(*corev1.Pod) {},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": withArgs("--port=8080")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod()
			firstPass(t, pod, tc.opts)
			tc.later(pod)
			checkApply(t, pod, []lbc.Backend{tgbTarget}, tc.opts, tc.want)
		})
	}
}

// TestApplyHeldSidecarTrust: a held sidecar's helper gets the same trust
// volume and environment as an app container's.
func TestApplyHeldSidecarTrust(t *testing.T) {
	pod := podWith(container("app", port("http", 8080)))
	pod.Spec.ServiceAccountName = "default"
	pod.Spec.InitContainers = []corev1.Container{nativeSidecar("envoy", envoyDrain)}
	if _, _, err := Apply(pod, []lbc.Backend{tgbTarget}, testOptions()); err != nil {
		t.Fatal(err)
	}
	names := func(c corev1.Container) (mounts, env []string) {
		for _, m := range c.VolumeMounts {
			mounts = append(mounts, m.Name)
		}
		for _, e := range c.Env {
			env = append(env, e.Name)
		}
		return mounts, env
	}
	wantMounts, wantEnv := names(pod.Spec.Containers[0])
	gotMounts, gotEnv := names(pod.Spec.InitContainers[0])
	if d := cmp.Diff(wantMounts, gotMounts); d != "" {
		t.Errorf("sidecar's mounts (-app +sidecar):\n%s", d)
	}
	if d := cmp.Diff(wantEnv, gotEnv); d != "" {
		t.Errorf("sidecar's env (-app +sidecar):\n%s", d)
	}
}

// firstPass injects pod behind tgbTarget, failing the test unless it does.
func firstPass(t *testing.T, pod *corev1.Pod, opts func(*Options)) {
	t.Helper()
	o := testOptions()
	if opts != nil {
		opts(&o)
	}
	if _, injected, err := Apply(pod, []lbc.Backend{tgbTarget}, o); err != nil || !injected {
		t.Fatalf("Apply = %v, %v", injected, err)
	}
}

// TestApplyOverAnotherModesHold: a pod whose spec carries the hold of a pass
// in another mode (copied from a live pod, or made before the options
// changed) gets this pass's hold in its place, its own preStop kept, and a
// second pass changes nothing. Before, the old hold was kept under the new
// pass's record, and the next pass held the container again over it.
func TestApplyOverAnotherModesHold(t *testing.T) {
	sleepMode := func(o *Options) { o.Mode = contract.ModeSleep }
	ownSleep := &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}
	tests := []struct {
		name        string
		pod         func() *corev1.Pod
		first, then func(*Options)
		want        view
	}{
		{
			name: "a sleep-mode hold under a wait pass: the helper, the pod's own sleep after it",
			pod: func() *corev1.Pod {
				c := container("app", port("http", 8080))
				c.Lifecycle = &corev1.Lifecycle{PreStop: ownSleep}
				return podWith(c)
			},
			first: sleepMode,
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": withArgs("--port=8080", `--then={"sleep":{"seconds":5}}`)}},
		},
		{
			name: "a wait-mode hold under a sleep pass: the native sleep, no helper",
			pod:  func() *corev1.Pod { return podWith(container("app", port("http", 8080))) },
			then: sleepMode,
			want: view{Injected: true, Managed: true, Gates: []string{gate}, Grace: ptr.To[int64](60),
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 30}}}},
		},
		{
			name: "a sidecar's sleep-mode hold under a wait pass",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Spec.InitContainers = []corev1.Container{nativeSidecar("envoy", ownSleep)}
				return p
			},
			first: sleepMode,
			want: view{Injected: true, Managed: true, Inits: []string{"envoy", "albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360), Sidecars: []string{"envoy"},
				PreStops: map[string]*corev1.LifecycleHandler{
					"app":   withArgs("--port=8080"),
					"envoy": withArgs("--port=8080", `--then={"sleep":{"seconds":5}}`),
				}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod()
			firstPass(t, pod, tc.first)
			checkApply(t, pod, []lbc.Backend{tgbTarget}, tc.then, tc.want)
		})
	}
}
