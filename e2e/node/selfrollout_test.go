package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/node"
	"github.com/albdrain/albdrain/internal/contract"
)

// albdrainReplicas is the chart's default replica count, which the own
// rollout runs with.
const albdrainReplicas = 2

// ownRolloutHeld is how many of the application's pods terminate, and stay
// held, across albdrain's whole rollout.
const ownRolloutHeld = 2

// albdrainOwnRollout rolls albdrain itself out (issue 13 item 11) on the
// real node, as `helm upgrade` or `kubectl rollout restart` does: a new pod
// template for its Deployment of two replicas, one new replica up before
// each old one is stopped. Meanwhile the application, under traffic
// through the emulated ALB, has pods terminating and pods created:
//   - two of its pods are scaled away just before, and the load balancer
//     controller's deregistrations are refused until albdrain's rollout is
//     over, so both holds are in flight on the old replicas when each is
//     stopped, and must move to a replica that stays;
//   - a pod is created as each old replica starts stopping, and a probe
//     admits a pod (server-side dry run) every 100 ms throughout, so
//     admissions reach the stopping replicas while the apiserver may still
//     route to them.
//
// It checks that every pod was admitted mutated (and the apiserver counted
// no admission failing open), that each hold moved and ended released,
// never timed out nor fell back, that no request through the ALB failed,
// and that each old replica, and each of the application's pods, exited 0
// within its grace period.
//
// The rig's endpoint lag (startRig) is what a stop must wait out: with the
// replicas stopping at once (the chart's shutdown steps set to 0), pods
// created as a replica stopped were admitted unmutated, and the apiserver
// counted calls failing open.
func (r *realNodeRig) albdrainOwnRollout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := r.env.Client
	const ns = "albdrain-own-rollout"
	// As `helm upgrade --set replicaCount=2`: the chart's default count,
	// which the rig's other rollouts, reading one replica's metrics, do
	// without.
	oldAlbdrain := scaleAlbdrain(ctx, t, c, albdrainReplicas)

	// The held pods' target group drains for a minute, so that their holds'
	// bound is the helper's max-hold, past albdrain's whole rollout.
	arn, url := r.deploy(ctx, t, ns, true, nil, albemu.TargetGroupSpec{DeregistrationDelay: time.Minute})
	scaleDeployment(ctx, t, c, ns, "web", ownRolloutHeld+2)
	serving := r.waitServing(ctx, t, ns, arn, nil, ownRolloutHeld+2)
	failOpenBefore := failOpenCount(ctx, t, r.env)

	run := startLoad(ctx, t, url)
	defer run.Stop()
	helpers := node.WatchProcesses(ctx, r.n, contract.HelperPath+"\x00")
	defer helpers.Stop()
	appExits := watchExits(ctx, t, r.env.Config, ns, "app")
	defer appExits.Stop()
	managerExits := watchExits(ctx, t, r.env.Config, cluster.Namespace, "manager")
	defer managerExits.Stop()

	// The holds wait for a deregistration that cannot happen yet.
	r.emu.SetActionFaults("DeregisterTargets", albemu.Faults{ErrorFraction: 1})
	defer r.emu.ClearFaults()
	scaleDeployment(ctx, t, c, ns, "web", 2)
	held := waitHeld(ctx, t, c, ns, serving, ownRolloutHeld)

	probe := startAdmissionProbe(ctx, c, ns)
	defer probe.stop()
	restartDeployment(ctx, t, c, cluster.Namespace, helmchart.ReleaseName)
	for i := range oldAlbdrain {
		waitStopping(ctx, t, c, oldAlbdrain, i+1)
		scaleDeployment(ctx, t, c, ns, "web", int32(2+i+1))
	}
	waitRolledOut(ctx, t, c, oldAlbdrain)
	probed, unmutated, probeErr := probe.stop()
	r.emu.ClearFaults()
	var terminated []corev1.Pod
	for _, p := range serving {
		if held[p.UID] {
			terminated = append(terminated, p)
		}
	}
	r.waitServing(ctx, t, ns, arn, terminated, 2+len(oldAlbdrain))
	results, procs, exits := run.Stop(), helpers.Stop(), append(appExits.Stop(), managerExits.Stop()...)

	// Admissions: every pod created, and every probe, came back mutated.
	t.Logf("%d pods admitted by dry run during albdrain's rollout, %d unmutated (last error: %v)", probed, unmutated, probeErr)
	if probed == 0 || unmutated != 0 || probeErr != nil {
		t.Errorf("%d of %d pods admitted during albdrain's rollout were left unmutated (last error: %v)", unmutated, probed, probeErr)
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Labels[contract.ManagedLabel] != "true" {
			t.Errorf("pod %s was admitted unmutated", p.Name)
		}
	}
	failOpenAfter := failOpenCount(ctx, t, r.env)
	t.Logf("the apiserver's count of calls to albdrain's webhook failing open: %v before, %v after", failOpenBefore, failOpenAfter)
	if d := failOpenAfter - failOpenBefore; d != 0 {
		t.Errorf("the apiserver counted %v calls to albdrain's webhook failing open", d)
	}

	// Holds: each held pod's preStop ran the helper, its hold started again
	// on another replica when the one holding it stopped, and it ended
	// released, by the replica that then had it.
	if len(procs) != ownRolloutHeld {
		t.Errorf("the node ran %d helper processes, want one per held pod (%d): %v", len(procs), ownRolloutHeld, procs)
	}
	for _, p := range terminated {
		ev := waitHoldEnded(ctx, t, c, p)
		t.Logf("%s: hold events %v", p.Name, ev)
		if ev[contract.ReasonHoldStarted] < 2 {
			t.Errorf("%s: %d HoldStarted events, want at least 2: its hold did not move off the stopped replica", p.Name, ev[contract.ReasonHoldStarted])
		}
		if n := ev[contract.ReasonHoldReleased] + ev[contract.ReasonHoldBounded]; n != 1 || ev[contract.ReasonHoldTimedOut] != 0 || ev[contract.ReasonHoldFellBack] != 0 {
			t.Errorf("%s: hold events %v, want one release and no timeout or fallback", p.Name, ev)
		}
	}
	failed, codes := failures(results)
	t.Logf("%d requests through the ALB, %d failed %v", len(results), failed, codes)
	if failed != 0 {
		t.Errorf("%d of %d requests failed %v, want 0", failed, len(results), codes)
	}

	// Exits: the old replicas and the held pods' app, 0 within the grace
	// period.
	if len(exits) != len(oldAlbdrain)+ownRolloutHeld {
		t.Errorf("the kubelet reported %d exits, want one per old albdrain replica and held pod (%d): %+v", len(exits), len(oldAlbdrain)+ownRolloutHeld, exits)
	}
	for _, e := range exits {
		checkExit(t, e)
	}
}

// checkExit checks that e's container exited 0 before its grace period's end.
func checkExit(t *testing.T, e exit) {
	t.Helper()
	if e.state.FinishedAt.IsZero() {
		t.Errorf("%s: the kubelet never reported the container's exit", e.pod)
		return
	}
	grace := time.Duration(e.graceSeconds) * time.Second
	t.Logf("%s: exited %d (%s) %s into a grace period of %s",
		e.pod, e.state.ExitCode, e.state.Reason, e.state.FinishedAt.Sub(e.deadline.Add(-grace)), grace)
	if e.state.ExitCode != 0 || e.state.FinishedAt.After(e.deadline.Time) {
		t.Errorf("%s: exited %d (%s) at %s, want 0 before the grace period's end at %s",
			e.pod, e.state.ExitCode, e.state.Reason, e.state.FinishedAt, e.deadline)
	}
}

// scaleAlbdrain sets albdrain's replica count, waits until that many of its
// pods are available, and returns them.
func scaleAlbdrain(ctx context.Context, t *testing.T, c client.Client, n int32) []corev1.Pod {
	t.Helper()
	scaleDeployment(ctx, t, c, cluster.Namespace, helmchart.ReleaseName, n)
	var pods []corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var dep appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: helmchart.ReleaseName}, &dep); err != nil {
			return false, err
		}
		var err error
		if pods, err = albdrainPods(ctx, c); err != nil || dep.Status.AvailableReplicas != n || len(pods) != int(n) {
			return false, err
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("albdrain never had %d available replicas: %v", n, err)
	}
	return pods
}

func albdrainPods(ctx context.Context, c client.Client) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := c.List(ctx, &pods, client.InNamespace(cluster.Namespace), client.MatchingLabels{"app.kubernetes.io/instance": helmchart.ReleaseName})
	return pods.Items, err
}

// scaleDeployment sets the replica count of Deployment ns/name.
func scaleDeployment(ctx context.Context, t *testing.T, c client.Client, ns, name string, n int32) {
	t.Helper()
	var dep appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &dep); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(dep.DeepCopy())
	dep.Spec.Replicas = ptr.To(n)
	if err := c.Patch(ctx, &dep, patch); err != nil {
		t.Fatal(err)
	}
}

// waitHeld waits until n of pods terminate and the watcher has started
// each one's hold; it returns their UIDs.
func waitHeld(ctx context.Context, t *testing.T, c client.Client, ns string, pods []corev1.Pod, n int) map[types.UID]bool {
	t.Helper()
	held := map[types.UID]bool{}
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		all, err := holdEvents(ctx, c, ns)
		if err != nil {
			return false, err
		}
		for _, p := range pods {
			if all[p.UID][contract.ReasonHoldStarted] > 0 {
				held[p.UID] = true
			}
		}
		return len(held) == n, nil
	})
	if err != nil {
		t.Fatalf("%d of %d pods of %s held: %v", len(held), n, ns, err)
	}
	return held
}

// waitStopping waits until n of the old replicas have been told to stop.
func waitStopping(ctx context.Context, t *testing.T, c client.Client, old []corev1.Pod, n int) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		stopping := 0
		for _, p := range old {
			var cur corev1.Pod
			err := c.Get(ctx, client.ObjectKeyFromObject(&p), &cur)
			if client.IgnoreNotFound(err) != nil {
				return false, err
			}
			if err != nil || cur.UID != p.UID || cur.DeletionTimestamp != nil {
				stopping++
			}
		}
		return stopping >= n, nil
	})
	if err != nil {
		t.Fatalf("albdrain's rollout never stopped %d old replicas: %v", n, err)
	}
}

// waitRolledOut waits until albdrain's rollout is over: its Deployment has
// its replicas available from the new template, and the old pods are gone.
func waitRolledOut(ctx context.Context, t *testing.T, c client.Client, old []corev1.Pod) {
	t.Helper()
	gone := map[types.UID]bool{}
	for _, p := range old {
		gone[p.UID] = true
	}
	var last string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var dep appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: helmchart.ReleaseName}, &dep); err != nil {
			return false, err
		}
		pods, err := albdrainPods(ctx, c)
		if err != nil {
			return false, err
		}
		last = fmt.Sprintf("%d pods, %d updated, %d available", len(pods), dep.Status.UpdatedReplicas, dep.Status.AvailableReplicas)
		for _, p := range pods {
			if gone[p.UID] {
				return false, nil
			}
		}
		n := ptr.Deref(dep.Spec.Replicas, 0)
		return dep.Status.ObservedGeneration == dep.Generation && len(pods) == int(n) &&
			dep.Status.UpdatedReplicas == n && dep.Status.AvailableReplicas == n, nil
	})
	if err != nil {
		t.Fatalf("albdrain's rollout never ended: %v (last: %s)", err, last)
	}
}

// holdEvents counts the watcher's events on each pod of ns by reason, over
// every replica that recorded them.
func holdEvents(ctx context.Context, c client.Client, ns string) (map[types.UID]map[string]int, error) {
	var events eventsv1.EventList
	if err := c.List(ctx, &events, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	out := map[types.UID]map[string]int{}
	for _, e := range events.Items {
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		if out[e.Regarding.UID] == nil {
			out[e.Regarding.UID] = map[string]int{}
		}
		out[e.Regarding.UID][e.Reason] += n
	}
	return out, nil
}

// waitHoldEnded waits until the watcher has recorded how pod's hold ended,
// and returns its hold events.
func waitHoldEnded(ctx context.Context, t *testing.T, c client.Client, pod corev1.Pod) map[string]int {
	t.Helper()
	var ev map[string]int
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		all, err := holdEvents(ctx, c, pod.Namespace)
		if err != nil {
			return false, err
		}
		ev = all[pod.UID]
		return ev[contract.ReasonHoldReleased]+ev[contract.ReasonHoldBounded]+ev[contract.ReasonHoldTimedOut]+ev[contract.ReasonHoldFellBack] > 0, nil
	})
	if err != nil {
		t.Errorf("%s: no event tells how its hold ended: %v (events %v)", pod.Name, err, ev)
	}
	return ev
}

// admissionProbe admits the application's pod by server-side dry run, as
// often as every 100 ms, and counts those albdrain's webhook left alone.
type admissionProbe struct {
	cancel context.CancelFunc
	done   chan struct{}

	probed, unmutated int
	err               error
}

func startAdmissionProbe(ctx context.Context, c client.Client, ns string) *admissionProbe {
	ctx, cancel := context.WithCancel(ctx)
	p := &admissionProbe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var dep appsv1.Deployment
			err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &dep)
			if err == nil {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: ns, Labels: dep.Spec.Template.Labels},
					Spec:       dep.Spec.Template.Spec,
				}
				err = c.Create(ctx, pod, client.DryRunAll)
				if err == nil {
					p.probed++
					if pod.Labels[contract.ManagedLabel] != "true" {
						p.unmutated++
					}
				}
			}
			if err != nil && ctx.Err() == nil {
				p.err = err
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// stop ends the probe and returns how many pods it admitted, how many of
// them unmutated, and its last error.
func (p *admissionProbe) stop() (probed, unmutated int, err error) {
	p.cancel()
	<-p.done
	return p.probed, p.unmutated, p.err
}

func failOpenCount(ctx context.Context, t *testing.T, env *kubetest.Env) float64 {
	t.Helper()
	n, err := env.FailOpenCount(ctx, "pods.albdrain.io")
	if err != nil {
		t.Fatal(err)
	}
	return n
}
