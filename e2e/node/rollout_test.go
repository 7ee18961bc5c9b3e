package node_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/drain/metrics"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/load"
	"github.com/albdrain/albdrain/e2e/node"
	"github.com/albdrain/albdrain/e2e/testcert"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// realNodeRig is the real node with everything around it that a rollout
// under traffic needs: the EndpointSlice controller, the ALB emulator
// reaching the node's pod subnet, the load balancer controller's stand-in
// on EndpointSlices, and albdrain's manager.
type realNodeRig struct {
	env *kubetest.Env
	n   *node.Node
	emu *albemu.Emulator
}

// startRig brings the rig up. albdrain's manager runs on the host, not as a
// pod: the webhook is registered with the apiserver by envtest and the hold
// endpoint listens on the host's end of the node's veth, with a certificate
// for that address; the helper in the pods is told that URL. Everything in
// the pods (init container from albdrain's image, the helper as preStop,
// its call to the watcher from the pod's own address) is real.
func startRig(t *testing.T) *realNodeRig {
	t.Helper()
	tm := cluster.DefaultTimings()
	wh, err := cluster.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD(), kubetest.WithMutatingWebhooks(wh))
	cm, err := cluster.StartControllerManager(env, t.TempDir(), append(cluster.Controllers, cluster.EndpointSliceController)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cm.Stop() })
	n := node.Start(t, env)
	importImages(t, n, true)

	emu := albemu.NewForTest(t, albemu.Options{
		TargetSubnet:               n.Net.Subnet,
		PropagationLag:             tm.PropagationLag,
		ConnectTimeout:             time.Second,
		IdleTimeout:                10 * time.Second,
		DefaultDeregistrationDelay: tm.DeregistrationDelay,
		DefaultHealthCheck: albemu.HealthCheck{
			Interval: tm.HealthCheckInterval, Timeout: tm.HealthCheckTimeout, HealthyThreshold: 2, UnhealthyThreshold: tm.UnhealthyThreshold,
		},
	})
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("id", "secret", "")}
	api := elbv2.NewFromConfig(awsCfg, func(o *elbv2.Options) { o.BaseEndpoint = aws.String(emu.URL()) })
	ctx := context.Background()
	ctl, err := fakelbc.Start(ctx, env.Config, fakelbc.Options{
		ELBv2: api, MinLag: tm.LBCMinLag, MaxLag: tm.LBCMaxLag, HealthPoll: tm.LBCHealthPoll, EndpointSlices: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)

	certDir := t.TempDir()
	if err := testcert.WriteServingCert(certDir, n.Net.HostIP.AsSlice()); err != nil {
		t.Fatal(err)
	}
	mgr, err := cluster.NewAlbdrain(context.Background(), env, tm, awsCfg, emu.URL(), cluster.Site{
		HoldHost: n.Net.HostIP.String(), HoldCertDir: certDir, HoldCAFile: filepath.Join(certDir, "tls.crt"), HelperImage: albdrainRef,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Stop() })
	return &realNodeRig{env: env, n: n, emu: emu}
}

var webLabels = map[string]string{"app": "web"}

// webDeployment is the application as its owners wrote it: podapp, which
// stops serving at SIGTERM as most servers do. The baseline carries the load
// balancer controller's readiness gate as its own webhook would add it;
// with albdrain the pods are left bare for albdrain's webhook. They name
// their ServiceAccount, as the ServiceAccount admission plugin (which this
// apiserver runs without) does before webhooks run, and do not mount its
// token: albdrain's own token, bound to the pod, is projected regardless.
func webDeployment(ns, nodeName string, withAlbdrain bool, variant func(*corev1.PodSpec)) *appsv1.Deployment {
	pod := corev1.PodSpec{
		NodeName:                      nodeName,
		ServiceAccountName:            "default",
		AutomountServiceAccountToken:  ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](60),
		Containers: []corev1.Container{{
			Name: "app", Image: podappRef, ImagePullPolicy: corev1.PullNever,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			Env:   []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
				PeriodSeconds: 1,
			},
		}},
	}
	if !withAlbdrain {
		pod.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: lbc.ReadinessGatePrefix + "web"}}
	}
	if variant != nil {
		variant(&pod)
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: webLabels}, Spec: pod},
		},
	}
}

// rollout deploys the application in its own namespace and target group,
// restarts it under traffic through the emulator, and returns the traffic's
// results once the old pods are gone, with the helper processes the node
// ran meanwhile.
func (r *realNodeRig) rollout(t *testing.T, ns string, withAlbdrain bool, variant func(*corev1.PodSpec), how disruption) ([]load.Result, []node.Proc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	arn, err := r.emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: ns, Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := r.emu.AddListener(arn, "")
	if err != nil {
		t.Fatal(err)
	}
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if withAlbdrain {
		namespace.Labels = map[string]string{contract.InjectKey: "enabled"}
	}
	objs := []client.Object{
		namespace,
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: webLabels,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		},
		&lbc.TargetGroupBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: arn, TargetType: ptr.To(lbc.TargetTypeIP),
				ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}},
		},
		webDeployment(ns, r.n.Name, withAlbdrain, variant),
		&policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: policyv1.PodDisruptionBudgetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: webLabels}, MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			},
		},
	}
	for _, o := range objs {
		if err := r.env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
	original := r.waitServing(ctx, t, ns, arn, nil)

	run, err := load.Start(ctx, load.Options{
		URL: ln.URL(), Workers: 4, Interval: 10 * time.Millisecond,
		MaxRequests: 1 << 30, MaxDuration: 3 * time.Minute, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Stop()
	helpers := node.WatchProcesses(ctx, r.n, contract.HelperPath+"\x00")
	defer helpers.Stop()
	switch how {
	case restart:
		r.restart(ctx, t, ns)
	case evict:
		r.evict(ctx, t, original)
	}
	r.waitServing(ctx, t, ns, arn, original)
	return run.Stop(), helpers.Stop()
}

// disruption is how a rollout replaces the pods.
type disruption int

const (
	// restart is `kubectl rollout restart`: a new template, surge 1.
	restart disruption = iota
	// evict evicts each pod through the Eviction API, as a node drain does,
	// within the PodDisruptionBudget (one unavailable at a time).
	evict
)

func (r *realNodeRig) restart(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	var dep appsv1.Deployment
	if err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(dep.DeepCopy())
	dep.Spec.Template.Annotations = map[string]string{"restartedAt": time.Now().Format(time.RFC3339Nano)}
	if err := r.env.Client.Patch(ctx, &dep, patch); err != nil {
		t.Fatal(err)
	}
}

// evict evicts the pods one by one, retrying while the budget refuses.
func (r *realNodeRig) evict(ctx context.Context, t *testing.T, pods []corev1.Pod) {
	t.Helper()
	for i := range pods {
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			err := r.env.Client.SubResource("eviction").Create(ctx, &pods[i], &policyv1.Eviction{
				ObjectMeta: metav1.ObjectMeta{Name: pods[i].Name, Namespace: pods[i].Namespace},
			})
			if apierrors.IsTooManyRequests(err) {
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			t.Fatalf("evict %s: %v", pods[i].Name, err)
		}
	}
}

// waitServing waits until exactly two pods run, Ready, none of them one of
// old, with no other pod left, and the target group routes to them alone;
// it returns them.
func (r *realNodeRig) waitServing(ctx context.Context, t *testing.T, ns, arn string, old []corev1.Pod) []corev1.Pod {
	t.Helper()
	replaced := map[types.UID]bool{}
	for _, p := range old {
		replaced[p.UID] = true
	}
	var last string
	var serving []corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := r.env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(webLabels)); err != nil {
			return false, err
		}
		want := map[string]bool{}
		for _, p := range pods.Items {
			ready := false
			for _, c := range p.Status.Conditions {
				ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
			}
			if p.DeletionTimestamp != nil || !ready || replaced[p.UID] {
				last = fmt.Sprintf("pod %s ready=%v deleting=%v", p.Name, ready, p.DeletionTimestamp != nil)
				return false, nil
			}
			want[p.Status.PodIP] = true
		}
		if len(want) != 2 {
			last = fmt.Sprintf("%d pods", len(want))
			return false, nil
		}
		routing, err := r.emu.RoutingTargets(arn)
		if err != nil {
			return false, err
		}
		if len(routing) != 2 {
			last = fmt.Sprintf("routing to %v", routing)
			return false, nil
		}
		for _, tg := range routing {
			if !want[tg.ID] {
				last = fmt.Sprintf("routing to %v", routing)
				return false, nil
			}
		}
		serving = pods.Items
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s never settled: %v (last: %s)", ns, err, last)
	}
	return serving
}

func failures(results []load.Result) (failed int, codes map[int]int) {
	codes = map[int]int{}
	for _, res := range results {
		if res.Failed() {
			failed++
			codes[res.FailureCode()]++
		}
	}
	return failed, codes
}

// TestRollingRestartOnRealNode restarts a Deployment under traffic through
// the ALB emulator on the real node, without and with albdrain (its default
// release policy): without, the load balancer keeps sending requests to
// pods that stopped at SIGTERM, and requests fail; with albdrain, none does,
// whatever the pod's shape: podapp's image has no shell, and the variants
// add a native sidecar or the application's own preStop.
func TestRollingRestartOnRealNode(t *testing.T) {
	r := startRig(t)

	baseline, helpers := r.rollout(t, "baseline", false, nil, restart)
	if len(helpers) != 0 {
		t.Errorf("baseline: the node ran albdrain's helper: %v", helpers)
	}
	failed, codes := failures(baseline)
	t.Logf("baseline: %d requests, %d failed %v", len(baseline), failed, codes)
	if failed == 0 {
		t.Errorf("baseline: no request of %d failed; the rollout did not show the race albdrain exists for", len(baseline))
	}

	for _, tc := range []struct {
		name    string
		variant func(*corev1.PodSpec)
		// wantArg is in every helper's command line.
		wantArg string
		how     disruption
	}{
		{name: "albdrain", wantArg: " wait "},
		{name: "albdrain-sidecar", wantArg: " wait ", variant: func(p *corev1.PodSpec) {
			p.InitContainers = append(p.InitContainers, corev1.Container{
				Name: "sidecar", Image: podappRef, ImagePullPolicy: corev1.PullNever, Args: []string{"-addr=:9090"},
				RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			})
		}},
		{name: "albdrain-own-prestop", wantArg: " --then=", variant: func(p *corev1.PodSpec) {
			p.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}}}
		}},
		{name: "albdrain-evictions", wantArg: " wait ", how: evict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fellBack := testutil.ToFloat64(metrics.Default().Holds.WithLabelValues(string(contract.OutcomeFallback)))
			results, helpers := r.rollout(t, tc.name, true, tc.variant, tc.how)
			// The kubelet projected each pod's token and CA bundle, and the
			// watcher accepted them: no hold fell back.
			if n := testutil.ToFloat64(metrics.Default().Holds.WithLabelValues(string(contract.OutcomeFallback))) - fellBack; n != 0 {
				t.Errorf("%v holds fell back", n)
			}
			failed, codes := failures(results)
			t.Logf("%s: %d requests, %d failed %v", tc.name, len(results), failed, codes)
			if failed != 0 {
				t.Errorf("%d of %d requests failed %v, want 0", failed, len(results), codes)
			}
			// From the node: each replaced pod's preStop ran the helper,
			// installed by the init container from albdrain's image.
			if len(helpers) != 2 {
				t.Errorf("the node ran %d helper processes during the rollout, want one per replaced pod (2): %v", len(helpers), helpers)
			}
			for _, h := range helpers {
				if !strings.Contains(h.Cmdline, tc.wantArg) {
					t.Errorf("helper ran as %q, want %q in it", h.Cmdline, tc.wantArg)
				}
			}
		})
	}
}
