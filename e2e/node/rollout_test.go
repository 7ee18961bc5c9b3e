package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/load"
	"github.com/albdrain/albdrain/e2e/node"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// realNodeRig is the real node with everything around it that a rollout
// under traffic needs: the EndpointSlice controller, the ALB emulator
// reaching the node's pod subnet, the load balancer controller's stand-in
// on EndpointSlices, and albdrain's manager.
type realNodeRig struct {
	*realNode
	emu *albemu.Emulator
}

// startRig brings the rig up, with albdrain installed from its chart as a
// user installs it (installAlbdrain): its manager runs as a pod on the
// node from albdrain's image, the apiserver calls its webhook through the
// Service, and the helper in the pods calls the watcher through the
// Service's name, resolved by the cluster DNS stand-in and translated by
// kube-proxy in the node's namespace.
func startRig(t *testing.T) *realNodeRig {
	t.Helper()
	tm := cluster.DefaultTimings()
	// A hold may outlast albdrain's own rollout (albdrainOwnRollout).
	tm.MaxHold = time.Minute
	// Endpoint changes reach the Services' clients (the apiserver calling
	// albdrain's webhook, kube-proxy) after a lag, as in a cluster, where
	// the EndpointSlice controller batches pod changes and every node's
	// kube-proxy syncs in its own time; here they would otherwise arrive
	// within milliseconds, and albdrain's own rollout (albdrainOwnRollout)
	// would pass without waiting to leave its Service's endpoints.
	r := startRealNode(t, nodeSetup{targetGroupBindings: true, services: true, albdrain: true,
		endpointSlices: true, controllerFlags: []string{"--endpointslice-updates-batch-period=2s"}})

	emu := r.emulator(t, rigEmulator(tm, r.n))
	// albdrain's own rollout fails every DeregisterTargets for its length:
	// at the controller's default backoff (up to 1000 s, doubling from
	// 5 ms) its retry after the fault could come past the holds' bound, so
	// the rig caps it, as --targetgroupbinding-max-exponential-backoff-delay
	// lets an operator do.
	r.loadBalancerController(t, emu, fakelbc.Options{MinLag: tm.LBCMinLag, MaxLag: tm.LBCMaxLag, Requeue: tm.LBCRequeue, MaxBackoff: 2 * time.Second})
	installAlbdrain(t, r.env, r.n, tm, emu.URL())
	return &realNodeRig{realNode: r, emu: emu}
}

// rigEmulator is the ALB emulator's configuration under tm, its API where
// the manager's pod on n calls it: the host's end of n's veth (or of its
// router's).
func rigEmulator(tm cluster.Timings, n *node.Node) albemu.Options {
	return albemu.Options{
		APIAddr:                    n.Net.HostIP.String() + ":0",
		PropagationLag:             tm.PropagationLag,
		ConnectTimeout:             time.Second,
		IdleTimeout:                10 * time.Second,
		DefaultDeregistrationDelay: tm.DeregistrationDelay,
		DefaultHealthCheck: albemu.HealthCheck{
			Interval: tm.HealthCheckInterval, Timeout: tm.HealthCheckTimeout, HealthyThreshold: 2, UnhealthyThreshold: tm.UnhealthyThreshold,
		},
	}
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
// ran meanwhile and how the app's containers of the deleted pods exited.
func (r *realNodeRig) rollout(t *testing.T, ns string, withAlbdrain bool, variant func(*corev1.PodSpec), how disruption) ([]load.Result, []node.Proc, []exit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	arn, url := r.deploy(ctx, t, ns, withAlbdrain, variant, albemu.TargetGroupSpec{})
	original := r.waitServing(ctx, t, ns, arn, nil, 2)

	run := startLoad(ctx, t, url)
	defer run.Stop()
	helpers := node.WatchProcesses(ctx, r.n, contract.HelperPath+"\x00")
	defer helpers.Stop()
	exits := watchExits(ctx, t, r.env.Config, ns, "app")
	defer exits.Stop()
	switch how {
	case restart:
		restartDeployment(ctx, t, r.env.Client, ns, "web")
	case evict:
		r.evict(ctx, t, original)
	}
	r.waitServing(ctx, t, ns, arn, original, 2)
	return run.Stop(), helpers.Stop(), exits.Stop()
}

// deploy creates the application's namespace (labelled for albdrain's
// injection when withAlbdrain), Service, TargetGroupBinding to a new target
// group (tg, named ns, port 8080) behind a listener, Deployment of two
// replicas and PodDisruptionBudget; it returns the target group's ARN and
// the listener's URL.
func (r *realNodeRig) deploy(ctx context.Context, t *testing.T, ns string, withAlbdrain bool, variant func(*corev1.PodSpec), tg albemu.TargetGroupSpec) (arn, url string) {
	t.Helper()
	tg.Name, tg.Port = ns, 8080
	arn, err := r.emu.CreateTargetGroup(tg)
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
		if d, ok := o.(*appsv1.Deployment); ok && withAlbdrain {
			r.waitInjecting(ctx, t, d)
		}
		if err := r.env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
	return arn, ln.URL()
}

// startLoad sends requests to url from four workers until Stop.
func startLoad(ctx context.Context, t *testing.T, url string) *load.Run {
	t.Helper()
	run, err := load.Start(ctx, load.Options{
		URL: url, Workers: 4, Interval: 10 * time.Millisecond,
		MaxRequests: 1 << 30, MaxDuration: 3 * time.Minute, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// waitInjecting waits until albdrain's webhook injects its hold into the
// Deployment's pods, asking with server-side dry runs: its manager only
// knows of the TargetGroupBinding just created once its cache has it, and a
// pod created before then would rightly be left alone.
func (r *realNodeRig) waitInjecting(ctx context.Context, t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "dry-run-", Namespace: dep.Namespace, Labels: dep.Spec.Template.Labels},
			Spec:       *dep.Spec.Template.Spec.DeepCopy(),
		}
		if err := r.env.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			return false, err
		}
		for _, c := range pod.Spec.InitContainers {
			if c.Name == contract.InitContainerName {
				checkWatcherURL(t, pod)
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("albdrain's webhook never injected the hold into %s's pods: %v", dep.Name, err)
	}
}

// watcherURL is where the chart tells the helper the watcher is: its
// Service's name, port watcher.port.
const watcherURL = "https://albdrain.albdrain-system.svc:8443"

// checkWatcherURL checks that the injected helper is told the watcher's
// Service name, so that its holds travel through DNS and kube-proxy.
func checkWatcherURL(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == contract.EnvWatcherURL {
			if e.Value != watcherURL {
				t.Errorf("the helper is told the watcher is at %q, want %q", e.Value, watcherURL)
			}
			return
		}
	}
	t.Errorf("the injected pod has no %s: %+v", contract.EnvWatcherURL, pod.Spec.Containers[0].Env)
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

// restartDeployment restarts the Deployment ns/name as `kubectl rollout
// restart` does: a new annotation on its pod template.
func restartDeployment(ctx context.Context, t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	var dep appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &dep); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(dep.DeepCopy())
	if dep.Spec.Template.Annotations == nil {
		dep.Spec.Template.Annotations = map[string]string{}
	}
	dep.Spec.Template.Annotations["restartedAt"] = time.Now().Format(time.RFC3339Nano)
	if err := c.Patch(ctx, &dep, patch); err != nil {
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

// waitServing waits until exactly want pods run, Ready, none of them one of
// old, with no other pod left, and the target group routes to them alone;
// it returns them.
func (r *realNodeRig) waitServing(ctx context.Context, t *testing.T, ns, arn string, old []corev1.Pod, want int) []corev1.Pod {
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
		ips := map[string]bool{}
		for _, p := range pods.Items {
			ready := false
			for _, c := range p.Status.Conditions {
				ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
			}
			if p.DeletionTimestamp != nil || !ready || replaced[p.UID] {
				last = fmt.Sprintf("pod %s ready=%v deleting=%v", p.Name, ready, p.DeletionTimestamp != nil)
				return false, nil
			}
			ips[p.Status.PodIP] = true
		}
		if len(ips) != want {
			last = fmt.Sprintf("%d pods", len(ips))
			return false, nil
		}
		routing, err := r.emu.RoutingTargets(arn)
		if err != nil {
			return false, err
		}
		if len(routing) != want {
			last = fmt.Sprintf("routing to %v", routing)
			return false, nil
		}
		for _, tg := range routing {
			if !ips[tg.ID] {
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
// the ALB emulator on the real node, without and with albdrain (installed
// from its chart, its default release policy): without, the load balancer
// keeps sending requests to pods that stopped at SIGTERM, and requests
// fail; with albdrain, none does, whatever the pod's shape: podapp's image
// has no shell, and the variants add a native sidecar or the application's
// own preStop. With albdrain it also checks, from the node and the
// manager's pod, that each replaced pod ran the helper as its preStop, that
// the watcher released each hold (none timed out or fell back), and that the
// app then exited of itself (0) within its grace period.
func TestRollingRestartOnRealNode(t *testing.T) {
	r := startRig(t)

	baseline, helpers, _ := r.rollout(t, "baseline", false, nil, restart)
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
			ctx := context.Background()
			before := holdOutcomes(ctx, t, r.env.Client)
			results, helpers, exits := r.rollout(t, tc.name, true, tc.variant, tc.how)
			// From the manager's pod: each hold reached the watcher through
			// its Service and ended there, none by timeout or fallback.
			after := holdOutcomes(ctx, t, r.env.Client)
			var released float64
			for _, o := range contract.Outcomes {
				d := after[string(o)] - before[string(o)]
				if o == contract.OutcomeTimeout || o == contract.OutcomeFallback {
					if d != 0 {
						t.Errorf("%v more holds ended by %s", d, o)
					}
					continue
				}
				released += d
			}
			if released != 2 {
				t.Errorf("the watcher released %v holds, want one per replaced pod (2); outcomes %v, before %v", released, after, before)
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
			// From the node: the app got SIGTERM after the hold and exited
			// of itself, within the grace period; a SIGKILL would show as 137.
			if len(exits) != 2 {
				t.Errorf("the kubelet reported %d exits of replaced pods' app, want 2: %+v", len(exits), exits)
			}
			for _, e := range exits {
				checkExit(t, e)
			}
		})
	}
	// Last: it leaves albdrain with two replicas, where the rollouts above
	// read one's metrics.
	t.Run("albdrain-own-rollout", r.albdrainOwnRollout)
}
