package inject

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

func testOptions() Options {
	return Options{
		Mode:            contract.ModeWait,
		MaxHold:         330 * time.Second,
		Sleep:           30 * time.Second,
		Fallback:        30 * time.Second,
		QuietPeriod:     3 * time.Second,
		QuietGaps:       15,
		QuietPeriodMax:  30 * time.Second,
		ShutdownBudget:  30 * time.Second,
		HelperImage:     "albdrain:test",
		HelperImagePath: "/albdrain-hold",
		WatcherURL:      "https://albdrain.albdrain.svc:8443",
	}
}

func container(name string, ports ...corev1.ContainerPort) corev1.Container {
	return corev1.Container{Name: name, Image: "app:1", Ports: ports}
}

func port(name string, n int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP}
}

func podWith(cs ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: cs},
	}
}

var tgbTarget = lbc.Backend{Service: "web", TargetPort: intstr.FromInt32(8080), TargetGroupBinding: "k8s-default-web-abc"}

// TestApplyWaitModeFull spells out the whole mutation once, so every field the
// webhook adds is pinned.
func TestApplyWaitModeFull(t *testing.T) {
	pod := podWith(container("app", port("http", 8080)))
	pod.Spec.ServiceAccountName = "default" // as the ServiceAccount admission plugin sets it
	o := testOptions()
	o.CABundle = true
	rec, injected, err := Apply(pod, []lbc.Backend{tgbTarget}, o)
	if err != nil || !injected {
		t.Fatalf("Apply = %v, %v", injected, err)
	}
	field := func(p string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: p}}
	}
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   "web-1",
			Labels: map[string]string{"app": "web", contract.ManagedLabel: "true"},
			Annotations: map[string]string{contract.InjectedKey: `{"mode":"wait","maxHoldSeconds":330,"containers":["app"],` +
				`"ports":[8080],"services":["web"],"targetGroupBindings":["k8s-default-web-abc"],"shutdownBudgetSeconds":30}`},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default",
			InitContainers: []corev1.Container{{
				Name:                     contract.InitContainerName,
				Image:                    "albdrain:test",
				Command:                  []string{"/albdrain-hold", "install", "/opt/albdrain/albdrain-hold"},
				VolumeMounts:             []corev1.VolumeMount{{Name: contract.VolumeName, MountPath: contract.MountPath}},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
					AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), Privileged: ptr.To(false),
					Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
			}},
			Containers: []corev1.Container{{
				Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{port("http", 8080)},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{
					"/opt/albdrain/albdrain-hold", "wait", "--max-hold=5m30s", "--fallback=30s", "--quiet-period=3s", "--quiet-gaps=15", "--quiet-period-max=30s", "--shutdown-budget=30s", "--port=8080",
				}}}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: contract.VolumeName, MountPath: contract.MountPath, ReadOnly: true},
					{Name: contract.TrustVolumeName, MountPath: "/var/run/secrets/albdrain.io", ReadOnly: true},
				},
				Env: []corev1.EnvVar{
					{Name: contract.EnvPodName, ValueFrom: field("metadata.name")},
					{Name: contract.EnvPodNamespace, ValueFrom: field("metadata.namespace")},
					{Name: contract.EnvPodUID, ValueFrom: field("metadata.uid")},
					{Name: contract.EnvPodIP, ValueFrom: field("status.podIP")},
					{Name: contract.EnvHostIP, ValueFrom: field("status.hostIP")},
					{Name: contract.EnvWatcherURL, Value: "https://albdrain.albdrain.svc:8443"},
					{Name: contract.EnvTrustDir, Value: "/var/run/secrets/albdrain.io"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: contract.VolumeName, VolumeSource: corev1.VolumeSource{
					EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("32Mi"))},
				}},
				{Name: contract.TrustVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "albdrain", ExpirationSeconds: ptr.To[int64](600), Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{
						LocalObjectReference: corev1.LocalObjectReference{Name: "albdrain-ca.crt"},
						Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
						Optional:             ptr.To(true),
					}},
				}}}},
			},
			ReadinessGates:                []corev1.PodReadinessGate{{ConditionType: "target-health.elbv2.k8s.aws/k8s-default-web-abc"}},
			TerminationGracePeriodSeconds: ptr.To[int64](360),
		},
	}
	if d := cmp.Diff(want, pod); d != "" {
		t.Errorf("mutated pod (-want +got):\n%s", d)
	}
	if rec.Mode != "wait" || rec.MaxHoldSeconds != 330 {
		t.Errorf("record = %+v", rec)
	}
}

// view is the part of a mutated pod the table tests compare.
type view struct {
	Injected bool
	PreStops map[string]*corev1.LifecycleHandler
	Inits    []string
	Gates    []string
	Grace    *int64
	Managed  bool
	// GatesSkipped is the record's readinessGatesSkipped.
	GatesSkipped []string
	// Sidecars is the record's list of held native sidecars.
	Sidecars []string
}

func viewOf(pod *corev1.Pod, injected bool) view {
	v := view{Injected: injected, PreStops: map[string]*corev1.LifecycleHandler{}, Grace: pod.Spec.TerminationGracePeriodSeconds,
		Managed: pod.Labels[contract.ManagedLabel] == "true"}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			v.PreStops[c.Name] = c.Lifecycle.PreStop
		}
	}
	for _, c := range pod.Spec.InitContainers {
		v.Inits = append(v.Inits, c.Name)
	}
	for _, g := range pod.Spec.ReadinessGates {
		v.Gates = append(v.Gates, string(g.ConditionType))
	}
	if r := contract.ParseRecord(pod.Annotations); r != nil {
		v.GatesSkipped = r.ReadinessGatesSkipped
		v.Sidecars = r.Sidecars
	}
	return v
}

func execHold(args ...string) *corev1.LifecycleHandler {
	return &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: append([]string{contract.HelperPath}, args...)}}
}

const gate = "target-health.elbv2.k8s.aws/k8s-default-web-abc"

func TestApply(t *testing.T) {
	sidecar := container("envoy", port("proxy", 9000))
	sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	withPreStop := func(c corev1.Container, h *corev1.LifecycleHandler) corev1.Container {
		c.Lifecycle = &corev1.Lifecycle{PreStop: h}
		return c
	}

	tests := []applyCase{
		{
			name:    "named target port holds only the container declaring it",
			pod:     podWith(container("app", port("http", 8080)), container("metrics", port("metrics", 9090))),
			targets: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), Ingress: "web"}},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold(append(waitArgs, "--port=8080")...)}},
		},
		{
			name:    "undeclared numeric port holds every app container",
			pod:     podWith(container("app"), container("worker")),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{
					"app":    execHold(append(waitArgs, "--port=8080")...),
					"worker": execHold(append(waitArgs, "--port=8080")...),
				}},
		},
		{
			name:    "named port nobody declares is not served: pod untouched",
			pod:     podWith(container("app", port("http", 8080))),
			targets: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("grpc"), Ingress: "web"}},
			want:    view{PreStops: map[string]*corev1.LifecycleHandler{}},
		},
		{
			name: "port served by a native sidecar holds the app containers behind it",
			pod: func() *corev1.Pod {
				p := podWith(container("app"))
				p.Spec.InitContainers = []corev1.Container{sidecar}
				return p
			}(),
			targets: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("proxy"), TargetGroupBinding: "k8s-default-web-abc"}},
			want: view{Injected: true, Managed: true, Inits: []string{"envoy", "albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold(append(waitArgs, "--port=9000")...)}},
		},
		{
			name:    "existing exec preStop runs after the hold",
			pod:     podWith(withPreStop(container("app", port("http", 8080)), &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/drain", "--now"}}})),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold(append(waitArgs, "--port=8080", `--then={"exec":{"command":["/bin/drain","--now"]}}`)...)}},
		},
		{
			name: "existing httpGet preStop runs after the hold, named port resolved",
			pod: podWith(withPreStop(container("app", port("http", 8080)), &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/shutdown", Port: intstr.FromString("http")}})),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold(append(waitArgs, "--port=8080", `--then={"httpGet":{"path":"/shutdown","port":8080}}`)...)}},
		},
		{
			// The default grace period (30 s) covered the pod's own 10 s
			// sleep and its shutdown; the hold comes on top of both.
			name:    "existing sleep preStop runs after the hold, within the pod's own budget",
			pod:     podWith(withPreStop(container("app", port("http", 8080)), &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 10}})),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold(append(waitArgs, "--port=8080", `--then={"sleep":{"seconds":10}}`)...)}},
		},
		{
			// 120 s is the application's budget, its own preStop included:
			// it gets all of it after a hold of at most 330 s.
			name: "own grace period and preStop: the hold comes on top of the budget",
			pod: func() *corev1.Pod {
				p := podWith(withPreStop(container("app", port("http", 8080)), &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/drain"}}}))
				p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](120)
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](450),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold("wait", "--max-hold=5m30s", "--fallback=30s", "--quiet-period=3s", "--quiet-gaps=15", "--quiet-period-max=30s",
					"--shutdown-budget=2m0s", "--port=8080", `--then={"exec":{"command":["/bin/drain"]}}`)}},
		},
		{
			// A preStop sleeping longer than the grace period it had: its
			// sleep is the budget.
			name: "own preStop sleep beyond the own grace period is the budget",
			pod: func() *corev1.Pod {
				p := podWith(withPreStop(container("app", port("http", 8080)), &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 90}}))
				p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](60)
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](420),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold("wait", "--max-hold=5m30s", "--fallback=30s", "--quiet-period=3s", "--quiet-gaps=15", "--quiet-period-max=30s",
					"--shutdown-budget=1m30s", "--port=8080", `--then={"sleep":{"seconds":90}}`)}},
		},
		{
			name:    "sleep mode uses the native sleep action and no helper",
			pod:     podWith(container("app", port("http", 8080))),
			targets: []lbc.Backend{tgbTarget},
			opts:    func(o *Options) { o.Mode = contract.ModeSleep },
			want: view{Injected: true, Managed: true, Gates: []string{gate}, Grace: ptr.To[int64](60),
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 30}}}},
		},
		{
			name:    "sleep mode adds the pod's own sleep to ours",
			pod:     podWith(withPreStop(container("app", port("http", 8080)), &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}})),
			targets: []lbc.Backend{tgbTarget},
			opts:    func(o *Options) { o.Mode = contract.ModeSleep },
			want: view{Injected: true, Managed: true, Gates: []string{gate}, Grace: ptr.To[int64](60),
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 35}}}},
		},
		{
			name:    "sleep mode with an exec preStop sequences both through the helper",
			pod:     podWith(withPreStop(container("app", port("http", 8080)), &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/stop"}}})),
			targets: []lbc.Backend{tgbTarget},
			opts:    func(o *Options) { o.Mode = contract.ModeSleep },
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](60),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold("sleep", "--max-hold=30s", `--then={"exec":{"command":["/bin/stop"]}}`)}},
		},
		{
			name: "pod annotations override mode and hold",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Annotations = map[string]string{contract.ModeKey: "sleep", contract.MaxHoldKey: "45"}
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Gates: []string{gate}, Grace: ptr.To[int64](75),
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 45}}}},
		},
		{
			name: "pod annotations size the quiet period",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Annotations = map[string]string{contract.QuietGapsKey: "20", contract.QuietPeriodKey: "2", contract.QuietPeriodMaxKey: " 60 "}
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](360),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold("wait", "--max-hold=5m30s", "--fallback=30s",
					"--quiet-period=2s", "--quiet-gaps=20", "--quiet-period-max=1m0s", "--shutdown-budget=30s", "--port=8080")}},
		},
		{
			name: "a fixed quiet period, capped at half a short hold",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Annotations = map[string]string{contract.QuietGapsKey: "0", contract.MaxHoldKey: "40"}
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			want: view{Injected: true, Managed: true, Inits: []string{"albdrain-init"}, Gates: []string{gate}, Grace: ptr.To[int64](70),
				PreStops: map[string]*corev1.LifecycleHandler{"app": execHold("wait", "--max-hold=40s", "--fallback=30s", "--quiet-period=3s", "--shutdown-budget=30s", "--port=8080")}},
		},
		{
			name: "a long grace period is the budget, the hold on top",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](3600)
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			opts:    func(o *Options) { o.Mode = contract.ModeSleep },
			want: view{Injected: true, Managed: true, Gates: []string{gate}, Grace: ptr.To[int64](3630),
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 30}}}},
		},
		{
			name: "existing readiness gate is not duplicated, two bindings give two gates",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: gate}}
				return p
			}(),
			targets: []lbc.Backend{tgbTarget, {Service: "web-admin", TargetPort: intstr.FromInt32(8080), TargetGroupBinding: "admin"}},
			opts:    func(o *Options) { o.Mode = contract.ModeSleep },
			want: view{Injected: true, Managed: true, Gates: []string{gate, "target-health.elbv2.k8s.aws/admin"}, Grace: ptr.To[int64](60),
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 30}}}},
		},
		{
			name:    "binding no controller reconciled: the hold without its gate, and why",
			pod:     podWith(container("app", port("http", 8080))),
			targets: []lbc.Backend{{Service: "web", TargetPort: intstr.FromInt32(8080), TargetGroupBinding: "k8s-default-web-abc", NotReconciled: "never reconciled"}},
			opts:    func(o *Options) { o.Mode = contract.ModeSleep },
			want: view{Injected: true, Managed: true, Grace: ptr.To[int64](60), GatesSkipped: []string{"never reconciled"},
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 30}}}},
		},
		{
			name: "only the reconciled binding of two gives its gate",
			pod:  podWith(container("app", port("http", 8080))),
			targets: []lbc.Backend{{Service: "web-admin", TargetPort: intstr.FromInt32(8080), TargetGroupBinding: "admin", NotReconciled: "generation 3 pending"},
				tgbTarget},
			opts: func(o *Options) { o.Mode = contract.ModeSleep },
			want: view{Injected: true, Managed: true, Gates: []string{gate}, Grace: ptr.To[int64](60), GatesSkipped: []string{"generation 3 pending"},
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 30}}}},
		},
		{
			name:    "readiness gates turned off for the webhook",
			pod:     podWith(container("app", port("http", 8080))),
			targets: []lbc.Backend{tgbTarget},
			opts:    func(o *Options) { o.Mode, o.NoReadinessGates = contract.ModeSleep, true },
			want: view{Injected: true, Managed: true, Grace: ptr.To[int64](60),
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 30}}}},
		},
		{
			name: "pod opts out of readiness gates, keeps its hold",
			pod: func() *corev1.Pod {
				p := podWith(container("app", port("http", 8080)))
				p.Annotations = map[string]string{contract.ReadinessGateKey: "disabled"}
				return p
			}(),
			targets: []lbc.Backend{tgbTarget},
			opts:    func(o *Options) { o.Mode = contract.ModeSleep },
			want: view{Injected: true, Managed: true, Grace: ptr.To[int64](60),
				PreStops: map[string]*corev1.LifecycleHandler{"app": {Sleep: &corev1.SleepAction{Seconds: 30}}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkApply(t, tc.pod, tc.targets, tc.opts, tc.want) })
	}
}

// applyCase is a pod, the backends in front of it, how the test changes
// the options, and the view of the mutated pod.
type applyCase struct {
	name    string
	pod     *corev1.Pod
	targets []lbc.Backend
	opts    func(*Options)
	want    view
}

// checkApply applies the mutation to pod, compares the view of the result
// with want, and checks that a second pass changes nothing.
func checkApply(t *testing.T, pod *corev1.Pod, targets []lbc.Backend, opts func(*Options), want view) {
	t.Helper()
	o := testOptions()
	if opts != nil {
		opts(&o)
	}
	_, injected, err := Apply(pod, targets, o)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, viewOf(pod, injected)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// A second pass (reinvocationPolicy: IfNeeded) changes nothing.
	again := pod.DeepCopy()
	if _, _, err := Apply(again, targets, o); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(pod, again); d != "" {
		t.Errorf("second pass changed the pod (-first +second):\n%s", d)
	}
}

func TestApplyRejectsInvalidOverrides(t *testing.T) {
	for _, ann := range []map[string]string{
		{contract.ModeKey: "forever"},
		{contract.MaxHoldKey: "abc"},
		{contract.MaxHoldKey: "0"},
		{contract.MaxHoldKey: "-5"},
		{contract.MaxHoldKey: "99999"},
		{contract.MaxHoldKey: "30s"},
		{contract.QuietGapsKey: "-1"},
		{contract.QuietGapsKey: "1001"},
		{contract.QuietGapsKey: "2.5"},
		{contract.QuietPeriodKey: "1s"},
		{contract.QuietPeriodMaxKey: "99999"},
		{contract.QuietPeriodKey: "40", contract.QuietPeriodMaxKey: "20"},
		{contract.QuietPeriodKey: "31"},
	} {
		pod := podWith(container("app", port("http", 8080)))
		pod.Annotations = ann
		before := pod.DeepCopy()
		_, injected, err := Apply(pod, []lbc.Backend{tgbTarget}, testOptions())
		if err == nil || injected {
			t.Errorf("%v: Apply = %v, %v; want an error", ann, injected, err)
			continue
		}
		if !strings.Contains(err.Error(), "albdrain.io/") {
			t.Errorf("%v: error %q does not name the annotation", ann, err)
		}
		if d := cmp.Diff(before, pod); d != "" {
			t.Errorf("%v: pod changed on error:\n%s", ann, d)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := testOptions().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mod := range map[string]func(*Options){
		"bad mode":             func(o *Options) { o.Mode = "nap" },
		"zero max hold":        func(o *Options) { o.MaxHold = 0 },
		"fractional sleep":     func(o *Options) { o.Sleep = 1500 * time.Millisecond },
		"fallback beyond hold": func(o *Options) { o.Fallback = time.Hour },
		"no helper image":      func(o *Options) { o.HelperImage = "" },
		"no watcher":           func(o *Options) { o.WatcherURL = "" },
		"hold past the limit":  func(o *Options) { o.MaxHold = 2 * time.Hour },
		"negative gaps":        func(o *Options) { o.QuietGaps = -1 },
		"too many gaps":        func(o *Options) { o.QuietGaps = MaxQuietGaps + 1 },
		"max below min":        func(o *Options) { o.QuietPeriodMax = time.Second },
		"max past the limit":   func(o *Options) { o.QuietPeriodMax = 2 * time.Hour },
	} {
		o := testOptions()
		mod(&o)
		if o.Validate() == nil {
			t.Errorf("%s: Validate accepted %+v", name, o)
		}
	}
}
