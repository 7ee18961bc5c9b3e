package integration

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// restrictedPod is a pod that passes the restricted Pod Security Standard on its own.
func restrictedPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "app", Image: "app:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
}

type testCluster struct {
	env  *kubetest.Env
	stop func()
}

// startCluster runs a real apiserver with the webhook registered over TLS and
// albdrain's manager serving it, with an ALB-backed Service in each namespace given.
// Without the CRD, the Service is an ip backend of an ALB Ingress instead.
func startCluster(t *testing.T, withTGB bool, namespaces map[string]map[string]string) *testCluster {
	t.Helper()
	wh, err := cluster.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	opts := []kubetest.Option{kubetest.WithMutatingWebhooks(wh)}
	if withTGB {
		opts = append(opts, kubetest.WithTargetGroupBindingCRD())
	}
	env := kubetest.Start(t, opts...)
	if !withTGB {
		mustCreate(t, env.Client, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "alb"},
			Spec: networkingv1.IngressClassSpec{Controller: lbc.ALBController}})
	}
	for ns, lbls := range namespaces {
		mustCreate(t, env.Client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: lbls}})
		mustCreate(t, env.Client, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		})
		if !withTGB {
			mustCreate(t, env.Client, &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Annotations: map[string]string{lbc.TargetTypeAnnotation: "ip"}},
				Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("alb"), DefaultBackend: &networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Name: "http"}}}},
			})
			continue
		}
		tgb := &lbc.TargetGroupBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "k8s-web-1234", Namespace: ns},
			Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1",
				TargetType: ptr.To(lbc.TargetTypeIP), ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}},
		}
		mustCreate(t, env.Client, tgb)
		mustMarkReconciled(t, env.Client, tgb)
	}
	return &testCluster{env: env, stop: startManager(t, env)}
}

// startManager runs albdrain's manager, as main would with these flags and
// extra, serving the webhook env registered; stop ends it.
func startManager(t *testing.T, env *kubetest.Env, extra ...string) func() {
	t.Helper()
	ctx := context.Background()
	wio := env.Environment.WebhookInstallOptions
	cfg := parseFlags(t, append([]string{
		"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0",
		fmt.Sprintf("--webhook-port=%d", wio.LocalServingPort), "--webhook-cert-dir=" + wio.LocalServingCertDir,
		"--hold-bind-address=127.0.0.1:0", "--hold-cert-dir=" + wio.LocalServingCertDir, "--aws-region=eu-west-1",
		"--max-hold=2m", "--sleep-duration=20s", "--fallback-sleep=20s", "--quiet-period=2s", "--shutdown-budget=15s",
		"--helper-image=albdrain:test", "--watcher-url=https://albdrain.albdrain.svc:8443"}, extra...)...)
	mctx, cancel := context.WithCancel(ctrl.LoggerInto(ctx, ctrl.Log))
	awsCfg := awsConfig()
	mgr, err := app.NewManager(mctx, env.Config, cfg, app.Options{AWS: &awsCfg, Process: app.InProcess()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	}
	t.Cleanup(func() {
		if mctx.Err() == nil {
			stop()
		}
	})
	if !mgr.GetCache().WaitForCacheSync(mctx) {
		t.Fatal("cache did not sync")
	}
	waitFor(t, "webhook server to start", func() bool { return mgr.GetWebhookServer().StartedChecker()(nil) == nil })
	return stop
}

// awsConfig is the manager's AWS configuration in these tests: static
// credentials (startManager names no ELBv2 endpoint, so no call gets far)
// and the standard retryer with its backoff shortened.
func awsConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = time.Millisecond })
		},
	}
}

// parseFlags builds the manager's configuration the way main does.
func parseFlags(t *testing.T, args ...string) app.Config {
	t.Helper()
	var cfg app.Config
	fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustCreate(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// mustMarkReconciled plays the load balancer controller having reconciled tgb.
func mustMarkReconciled(t *testing.T, c client.Client, tgb *lbc.TargetGroupBinding) {
	t.Helper()
	if err := fakelbc.MarkReconciled(context.Background(), c, tgb); err != nil {
		t.Fatalf("mark %s reconciled: %v", tgb.Name, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func isMutated(p *corev1.Pod) bool { return p.Labels[contract.ManagedLabel] == "true" }

func TestWebhookThroughAPIServer(t *testing.T) {
	c := startCluster(t, true, map[string]map[string]string{
		"opted-in":   {contract.InjectKey: "enabled"},
		"restricted": {contract.InjectKey: "enabled", "pod-security.kubernetes.io/enforce": "restricted"},
		"plain":      nil,
	})
	cl := c.env.Client
	ctx := context.Background()

	t.Run("pod behind an ip target group is mutated", func(t *testing.T) {
		pod := restrictedPod("opted-in", "web-1")
		mustCreate(t, cl, pod)
		if !isMutated(pod) {
			t.Fatalf("pod not mutated: labels %v", pod.Labels)
		}
		app := pod.Spec.Containers[0]
		if app.Lifecycle == nil || app.Lifecycle.PreStop == nil || app.Lifecycle.PreStop.Exec == nil ||
			app.Lifecycle.PreStop.Exec.Command[0] != contract.HelperPath {
			t.Errorf("preStop = %+v", app.Lifecycle)
		}
		if len(pod.Spec.InitContainers) != 1 || pod.Spec.InitContainers[0].Name != contract.InitContainerName {
			t.Errorf("init containers = %v", pod.Spec.InitContainers)
		}
		if len(pod.Spec.ReadinessGates) != 1 || pod.Spec.ReadinessGates[0].ConditionType != "target-health.elbv2.k8s.aws/k8s-web-1234" {
			t.Errorf("readiness gates = %v", pod.Spec.ReadinessGates)
		}
		// The apiserver defaults the grace period (30 s) before admission:
		// that is the application's budget, and the 120 s hold comes on top.
		if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g != 150 {
			t.Errorf("grace period = %v, want 150", ptr.Deref(g, -1))
		}
	})

	t.Run("mutated pod passes the restricted Pod Security Standard", func(t *testing.T) {
		pod := restrictedPod("restricted", "web-1")
		mustCreate(t, cl, pod)
		if !isMutated(pod) {
			t.Fatal("pod not mutated")
		}
	})

	t.Run("sleep mode's native sleep action is accepted", func(t *testing.T) {
		pod := restrictedPod("opted-in", "web-sleep")
		pod.Annotations = map[string]string{contract.ModeKey: "sleep", contract.MaxHoldKey: "25"}
		mustCreate(t, cl, pod)
		if h := pod.Spec.Containers[0].Lifecycle; h == nil || h.PreStop.Sleep == nil || h.PreStop.Sleep.Seconds != 25 {
			t.Errorf("preStop = %+v", h)
		}
	})

	t.Run("namespace not labelled: untouched", func(t *testing.T) {
		pod := restrictedPod("plain", "web-1")
		mustCreate(t, cl, pod)
		if isMutated(pod) || pod.Spec.Containers[0].Lifecycle != nil {
			t.Errorf("pod in unlabelled namespace was mutated: %v", pod.Labels)
		}
	})

	t.Run("albdrain's own pods are never sent to the webhook", func(t *testing.T) {
		pod := restrictedPod("opted-in", "albdrain-self")
		pod.Labels["app.kubernetes.io/name"] = "albdrain"
		mustCreate(t, cl, pod)
		if isMutated(pod) {
			t.Error("albdrain's own pod was mutated")
		}
	})

	t.Run("opted-out pod: untouched", func(t *testing.T) {
		pod := restrictedPod("opted-in", "web-out")
		pod.Annotations = map[string]string{contract.InjectKey: "disabled"}
		mustCreate(t, cl, pod)
		if isMutated(pod) {
			t.Error("opted-out pod was mutated")
		}
	})

	t.Run("invalid override is refused with a clear message", func(t *testing.T) {
		pod := restrictedPod("opted-in", "web-bad")
		pod.Annotations = map[string]string{contract.MaxHoldKey: "a while"}
		err := cl.Create(ctx, pod)
		if err == nil || !strings.Contains(err.Error(), contract.MaxHoldKey) {
			t.Fatalf("create = %v, want a denial naming %s", err, contract.MaxHoldKey)
		}
	})

	// Without the skip, the apiserver refuses a mutated Windows pod (the
	// helper's Linux-only securityContext) after the webhook answered.
	t.Run("Windows pod: created unmutated, reason recorded", func(t *testing.T) {
		for name, mod := range map[string]func(*corev1.PodSpec){
			"web-win-os":       func(s *corev1.PodSpec) { s.OS = &corev1.PodOS{Name: corev1.Windows} },
			"web-win-selector": func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"kubernetes.io/os": "windows"} },
		} {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "opted-in", Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
			mod(&pod.Spec)
			mustCreate(t, cl, pod)
			if isMutated(pod) || len(pod.Spec.InitContainers) != 0 {
				t.Errorf("%s: Windows pod was mutated", name)
			}
			if got := pod.Annotations[contract.SkippedKey]; !strings.Contains(got, "Windows") {
				t.Errorf("%s: skipped = %q, want the Windows reason", name, got)
			}
		}
	})

	t.Run("hostNetwork pod: created unmutated, reason recorded", func(t *testing.T) {
		pod := restrictedPod("opted-in", "web-hostnet")
		pod.Spec.HostNetwork = true
		mustCreate(t, cl, pod)
		if isMutated(pod) {
			t.Error("hostNetwork pod was mutated")
		}
		if got := pod.Annotations[contract.SkippedKey]; !strings.Contains(got, "hostNetwork") {
			t.Errorf("skipped = %q, want the hostNetwork reason", got)
		}
	})

	// The proxy would take the load balancer's traffic and die first: a
	// hold here would claim protection the pod does not have.
	t.Run("meshed pod: created unmutated, reason recorded", func(t *testing.T) {
		pod := restrictedPod("opted-in", "web-mesh")
		pod.Annotations = map[string]string{"sidecar.istio.io/status": `{"containers":["istio-proxy"]}`}
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: "proxyv2:1",
			SecurityContext: pod.Spec.Containers[0].SecurityContext})
		mustCreate(t, cl, pod)
		if isMutated(pod) || len(pod.Spec.InitContainers) != 0 || pod.Spec.Containers[0].Lifecycle != nil {
			t.Errorf("meshed pod was mutated: labels %v, init containers %v", pod.Labels, pod.Spec.InitContainers)
		}
		if got := pod.Annotations[contract.SkippedKey]; !strings.Contains(got, "Istio") {
			t.Errorf("skipped = %q, want the mesh reason", got)
		}
	})

	// The kubelet runs a native sidecar's preStop as soon as the pod is
	// deleted; behind the hold, the drain hook waits for the load balancer.
	t.Run("native sidecar's own preStop runs after the hold", func(t *testing.T) {
		pod := restrictedPod("opted-in", "web-sidecar")
		pod.Spec.InitContainers = []corev1.Container{{Name: "envoy", Image: "envoy:1",
			RestartPolicy:   ptr.To(corev1.ContainerRestartPolicyAlways),
			SecurityContext: pod.Spec.Containers[0].SecurityContext,
			Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
				Exec: &corev1.ExecAction{Command: []string{"/bin/drain-listeners"}}}}}}
		mustCreate(t, cl, pod)
		if !isMutated(pod) {
			t.Fatal("pod not mutated")
		}
		envoy := pod.Spec.InitContainers[0]
		h := envoy.Lifecycle.PreStop
		if h.Exec == nil || h.Exec.Command[0] != contract.HelperPath ||
			!slices.Contains(h.Exec.Command, `--then={"exec":{"command":["/bin/drain-listeners"]}}`) {
			t.Errorf("sidecar preStop = %+v, want the hold then the drain hook", h)
		}
		if !slices.ContainsFunc(envoy.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == contract.VolumeName }) {
			t.Errorf("sidecar mounts = %v, want the helper volume", envoy.VolumeMounts)
		}
	})

	t.Run("webhook down: pods are still created, unmutated", func(t *testing.T) {
		c.stop()
		pod := restrictedPod("opted-in", "web-while-down")
		mustCreate(t, cl, pod)
		if isMutated(pod) {
			t.Error("pod mutated while the webhook was down")
		}
	})
}

func TestWebhookWithoutTargetGroupBindingCRD(t *testing.T) {
	c := startCluster(t, false, map[string]map[string]string{"opted-in": {contract.InjectKey: "enabled"}})
	pod := restrictedPod("opted-in", "web-1")
	mustCreate(t, c.env.Client, pod)
	if !isMutated(pod) {
		t.Fatal("pod behind an ALB ip Ingress was not mutated")
	}
	if len(pod.Spec.ReadinessGates) != 0 {
		t.Errorf("readiness gates %v: without a TargetGroupBinding there is no gate the controller would set", pod.Spec.ReadinessGates)
	}
	if !strings.Contains(pod.Annotations[contract.InjectedKey], `"ingresses":["shop"]`) {
		t.Errorf("record = %s", pod.Annotations[contract.InjectedKey])
	}
}
