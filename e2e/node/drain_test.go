package node_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/load"
	"github.com/albdrain/albdrain/e2e/node"
	"github.com/albdrain/albdrain/internal/contract"
)

// twoNodes is a cluster of two real nodes behind a router, with a real
// kube-scheduler placing pods: drained is the node the scenarios drain,
// the rig's own node (r.n) the one albdrain's manager runs on and the
// pods move to.
type twoNodes struct {
	*realNodeRig
	drained *node.Node
	cs      kubernetes.Interface
}

// startTwoNodes brings up the apiserver, the controllers, the scheduler,
// two nodes behind a router, the ALB emulator reaching every pod, the load
// balancer controller's stand-in and albdrain from its chart, its manager
// on the node that is not drained.
func startTwoNodes(t *testing.T) *twoNodes {
	t.Helper()
	tm := cluster.DefaultTimings()
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD(), kubetest.WithInClusterClients())
	// The node lifecycle controller lifts the not-ready taint a kubelet
	// registers its node with, and taints a cordoned node, as the
	// scheduler expects.
	controllers := append(slices.Clone(cluster.Controllers), cluster.EndpointSliceController,
		"root-ca-certificate-publisher-controller", "node-lifecycle-controller")
	cm, err := cluster.StartControllerManager(env, t.TempDir(), controllers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cm.Stop(); err != nil {
			t.Logf("stop kube-controller-manager: %v (log: %s)", err, cm.LogPath)
		}
	})
	sched, err := cluster.StartScheduler(env, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sched.Stop(); err != nil {
			t.Logf("stop kube-scheduler: %v (log: %s)", err, sched.LogPath)
		}
	})
	router := node.NewRouter(t)
	drained := node.Start(t, env, node.OnRouter(router), node.WithServices())
	other := node.Start(t, env, node.OnRouter(router), node.WithServices())
	r := &realNode{env: env, n: other, albdrainDigest: importImages(t, true, drained, other)}
	emu := r.emulator(t, rigEmulator(tm, other))
	r.loadBalancerController(t, emu, fakelbc.Options{MinLag: tm.LBCMinLag, MaxLag: tm.LBCMaxLag, Requeue: tm.LBCRequeue})
	installAlbdrain(t, env, other, tm, emu.URL())
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &twoNodes{realNodeRig: &realNodeRig{realNode: r, emu: emu}, drained: drained, cs: cs}
}

// drainReplicas is the Deployment's size in the drain scenarios: enough
// that the scheduler puts some on each node and the drain evicts more than
// one under the budget.
const drainReplicas = 4

// spread leaves the pods to the scheduler (no nodeName), spread over the
// nodes as a user spreads replicas: softly, so a drain can move them all
// to the node left.
func spread(p *corev1.PodSpec) {
	p.NodeName = ""
	p.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector: &metav1.LabelSelector{MatchLabels: webLabels},
	}}
}

// drainResult is what a drain under traffic did.
type drainResult struct {
	// evicted are the Deployment's pods that ran on the drained node.
	evicted []corev1.Pod
	results []load.Result
	helpers []node.Proc
	exits   []exit
	// outcomes are the holds that ended during the drain, by outcome.
	outcomes map[string]float64
}

// drainUnderTraffic deploys the application in ns, spread by the scheduler
// over both nodes, and drains the first node under traffic through the
// emulator as `kubectl drain --ignore-daemonsets --delete-emptydir-data
// [--grace-period=grace]` does (grace < 0: the pods' own): cordon, then
// evict every pod through the Eviction API, retrying while the
// PodDisruptionBudget refuses, and wait until they are gone. It returns
// once the replacements serve on the other node; the node is uncordoned at
// the end.
func (r *twoNodes) drainUnderTraffic(t *testing.T, ns string, withAlbdrain bool, grace int) drainResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	arn, url := r.deploy(ctx, t, ns, withAlbdrain, spread, albemu.TargetGroupSpec{})
	scaleDeployment(ctx, t, r.env.Client, ns, "web", drainReplicas)
	pods := r.waitServing(ctx, t, ns, arn, nil, drainReplicas)
	var res drainResult
	for _, p := range pods {
		if p.Spec.NodeName == r.drained.Name {
			res.evicted = append(res.evicted, p)
		}
	}
	if len(res.evicted) == 0 || len(res.evicted) == len(pods) {
		t.Fatalf("the scheduler put %d of %d pods on the node to drain, want some there and some on the other", len(res.evicted), len(pods))
	}
	t.Logf("%s: %d of %d pods on the node to drain", ns, len(res.evicted), len(pods))

	before := holdOutcomes(ctx, t, r.env.Client)
	run := startLoad(ctx, t, url)
	defer run.Stop()
	helpers := node.WatchProcesses(ctx, r.drained, contract.HelperPath+"\x00")
	defer helpers.Stop()
	exits := watchExits(ctx, t, r.env.Config, ns, "app")
	defer exits.Stop()

	d := &drain.Helper{
		Ctx: ctx, Client: r.cs, GracePeriodSeconds: grace, Timeout: 3 * time.Minute,
		IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
		// kubectl retries an eviction the budget refuses every 5 s; a
		// second keeps the test short and changes nothing it checks.
		EvictErrorRetryDelay: time.Second,
		Out:                  logWriter{t}, ErrOut: logWriter{t},
	}
	var n corev1.Node
	if err := r.env.Client.Get(ctx, client.ObjectKey{Name: r.drained.Name}, &n); err != nil {
		t.Fatal(err)
	}
	if err := drain.RunCordonOrUncordon(d, &n, true); err != nil {
		t.Fatalf("cordon %s: %v", n.Name, err)
	}
	if err := drain.RunNodeDrain(d, n.Name); err != nil {
		t.Fatalf("drain %s: %v", n.Name, err)
	}
	r.waitServing(ctx, t, ns, arn, res.evicted, drainReplicas)
	res.results, res.helpers, res.exits = run.Stop(), helpers.Stop(), exits.Stop()
	after := holdOutcomes(ctx, t, r.env.Client)
	res.outcomes = map[string]float64{}
	for _, o := range contract.Outcomes {
		if d := after[string(o)] - before[string(o)]; d != 0 {
			res.outcomes[string(o)] = d
		}
	}
	// The drained node is left with none of the Deployment's pods.
	var left corev1.PodList
	if err := r.env.Client.List(ctx, &left, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, p := range left.Items {
		if p.Spec.NodeName == r.drained.Name {
			t.Errorf("pod %s still on the drained node %s (phase %s)", p.Name, n.Name, p.Status.Phase)
		}
	}
	if err := r.env.Client.Get(ctx, client.ObjectKey{Name: r.drained.Name}, &n); err != nil {
		t.Fatal(err)
	}
	if err := drain.RunCordonOrUncordon(d, &n, false); err != nil {
		t.Fatalf("uncordon %s: %v", n.Name, err)
	}
	return res
}

// logWriter sends the drain's progress lines to the test's log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestTwoNodeDrain drains a node as `kubectl drain` does (cordon, then
// evictions under the PodDisruptionBudget) while traffic flows through the
// emulated ALB to a Deployment the real kube-scheduler spread over two real
// nodes. Without albdrain requests fail. With albdrain none does: albdrain
// holds each evicted pod until the load balancer stopped sending to it,
// every hold ends released (none by timeout or fallback), the pods move to
// the other node, and each app exits of itself within its grace period.
// Last, the drain cuts the grace period shorter than the load balancer's
// lag (`--grace-period`, as spot reclaims and Karpenter do): every pod
// still ends within it, and the test reports the requests that cost.
func TestTwoNodeDrain(t *testing.T) {
	r := startTwoNodes(t)

	// Each drain leaves the next its nodes: a failed one stops the test.
	if !t.Run("baseline", func(t *testing.T) {
		res := r.drainUnderTraffic(t, "baseline", false, -1)
		failed, codes := failures(res.results)
		t.Logf("baseline: %d pods evicted, %d requests, %d failed %v", len(res.evicted), len(res.results), failed, codes)
		if len(res.helpers) != 0 {
			t.Errorf("the node ran albdrain's helper: %v", res.helpers)
		}
		if failed == 0 {
			t.Errorf("no request of %d failed; the drain did not show the race albdrain exists for", len(res.results))
		}
	}) {
		return
	}
	if !t.Run("albdrain", func(t *testing.T) {
		res := r.drainUnderTraffic(t, "albdrain", true, -1)
		failed, codes := failures(res.results)
		t.Logf("albdrain: %d pods evicted, %d requests, %d failed %v; holds %v", len(res.evicted), len(res.results), failed, codes, res.outcomes)
		if failed != 0 {
			t.Errorf("%d of %d requests failed %v, want 0", failed, len(res.results), codes)
		}
		var released float64
		for o, n := range res.outcomes {
			if o == string(contract.OutcomeTimeout) || o == string(contract.OutcomeFallback) {
				t.Errorf("%v holds ended by %s", n, o)
				continue
			}
			released += n
		}
		if int(released) != len(res.evicted) {
			t.Errorf("the watcher released %v holds, want one per evicted pod (%d): %v", released, len(res.evicted), res.outcomes)
		}
		if len(res.helpers) != len(res.evicted) {
			t.Errorf("the drained node ran %d helpers, want one per evicted pod (%d): %v", len(res.helpers), len(res.evicted), res.helpers)
		}
		if len(res.exits) != len(res.evicted) {
			t.Errorf("the kubelet reported %d exits of evicted pods' app, want %d: %+v", len(res.exits), len(res.evicted), res.exits)
		}
		for _, e := range res.exits {
			checkExit(t, e)
		}
	}) {
		return
	}
	t.Run("albdrain-grace-cut", func(t *testing.T) {
		// Shorter than the lag: the controller's reaction and the ALB's
		// propagation together take longer than a second.
		const grace = 1
		res := r.drainUnderTraffic(t, "grace-cut", true, grace)
		failed, codes := failures(res.results)
		t.Logf("grace period cut to %ds: %d pods evicted, %d requests, %d failed %v; holds %v",
			grace, len(res.evicted), len(res.results), failed, codes, res.outcomes)
		if len(res.exits) != len(res.evicted) {
			t.Errorf("the kubelet reported %d exits of evicted pods' app, want %d: %+v", len(res.exits), len(res.evicted), res.exits)
		}
		for _, e := range res.exits {
			checkWithinGrace(t, e, grace)
		}
	})
}

// checkWithinGrace checks that the app's container ended by the end of the
// grace period the drain gave, however the hold fared. Both times are
// whole seconds, truncated, so the deadline read may be up to a second
// early.
func checkWithinGrace(t *testing.T, e exit, grace int64) {
	t.Helper()
	if e.state.FinishedAt.IsZero() {
		t.Errorf("%s: the kubelet never reported the container's exit", e.pod)
		return
	}
	if e.graceSeconds != grace {
		t.Errorf("%s: deleted with a grace period of %ds, want the drain's %ds", e.pod, e.graceSeconds, grace)
	}
	t.Logf("%s: exited %d (%s) at %s, its grace period ending at %s",
		e.pod, e.state.ExitCode, e.state.Reason, e.state.FinishedAt.Format(time.TimeOnly), e.deadline.Format(time.TimeOnly))
	if end := e.deadline.Add(time.Second); e.state.FinishedAt.After(end) {
		t.Errorf("%s: exited at %s, after its grace period's end at %s", e.pod, e.state.FinishedAt, e.deadline)
	}
}
