package faults_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubelet"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// Every replica of the watcher (and with it the webhook) killed while a pod
// is held, and kept down until every original pod has terminated. Helpers
// cannot reach the watcher: each falls back to its fixed sleep, within its
// max-hold, and then runs the container's own preStop. Pods the rollout
// creates meanwhile are admitted unmutated, and the apiserver counts each
// admission that failed open.
func TestWatcherDown(t *testing.T) {
	rec := newRecorder(t)
	failOpenBefore := failOpenCount(t)
	t.Cleanup(func() { ensureRunning(t) })
	res := runCustom(t, scenario.Custom{
		Name:            "watcher-down",
		Workload:        rec.ownPreStop,
		UnrecordedHolds: true,
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			original, err := s.Pods(ctx)
			if err != nil {
				return err
			}
			if err := s.RollingRestart(ctx); err != nil {
				return err
			}
			if err := s.Poll(ctx, "a hold to start", s.HoldStarted); err != nil {
				return err
			}
			s.Progressf("stopping albdrain's manager")
			if err := shared.Albdrain.Stop(); err != nil {
				return err
			}
			err = s.Poll(ctx, "every original pod to terminate", allTerminated(s, original))
			s.Progressf("starting albdrain's manager again")
			return errors.Join(err, shared.Albdrain.Start(ctx))
		},
	})
	hooks := checkBounded(t, res, 3)
	checkFellBackThenOwnPreStop(t, hooks, rec)

	var pods corev1.PodList
	if err := shared.Env.Client.List(context.Background(), &pods, client.InNamespace(res.Namespace)); err != nil {
		t.Fatal(err)
	}
	unmutated := 0
	for _, p := range pods.Items {
		if p.Labels[contract.ManagedLabel] != "true" {
			unmutated++
		}
	}
	failedOpen := failOpenCount(t) - failOpenBefore
	t.Logf("%d of %d pods admitted unmutated; apiserver_admission_webhook_fail_open_count grew by %v", unmutated, len(pods.Items), failedOpen)
	if unmutated == 0 {
		t.Error("no pod was created while the webhook was down: the run did not test admission failing open")
	}
	if failedOpen < float64(unmutated) {
		t.Errorf("the apiserver counted %v admissions failing open for %d unmutated pods", failedOpen, unmutated)
	}
}

// The hold endpoint unreachable from pods (a network policy, say) while the
// webhook works: new pods are still mutated, and every hold falls back to
// its fixed sleep, then runs the container's own preStop. The sleep
// outlasts the load balancer's drain here, so no request fails.
func TestHoldEndpointUnreachable(t *testing.T) {
	rec := newRecorder(t)
	reps := startReplicas(t, 1, cluster.ReplicaOptions{})
	res := runCustom(t, scenario.Custom{
		Name:            "hold-unreachable",
		Workload:        rec.ownPreStop,
		UnrecordedHolds: true,
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			original, err := s.Pods(ctx)
			if err != nil {
				return err
			}
			s.Progressf("cutting pods off the hold endpoint")
			reps.Hold.Cut()
			defer reps.Hold.Restore()
			if err := s.RollingRestart(ctx); err != nil {
				return err
			}
			return s.Poll(ctx, "every original pod to terminate", allTerminated(s, original))
		},
	})
	hooks := checkBounded(t, res, 3)
	checkFellBackThenOwnPreStop(t, hooks, rec)
	checkNoFailures(t, res)
	if n := res.Albdrain.Events[contract.ReasonHoldStarted]; n != 0 {
		t.Errorf("%d holds reached the watcher through a cut network", n)
	}
	if reps.Hold.Refused() == 0 {
		t.Error("no connection to the hold endpoint was refused")
	}
	pods, err := podsOf(res.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if p.Labels[contract.ManagedLabel] != "true" {
			t.Errorf("pod %s admitted unmutated while the webhook was up", p.Name)
		}
	}
}

// One of two replicas killed (its connections dropped unanswered) while it
// holds a pod: the helper retries through the Service, the other replica
// takes the hold up from Kubernetes and ELBv2 alone, and the rollout ends
// as cleanly as with no fault at all.
func TestOneOfTwoReplicasKilled(t *testing.T) {
	reps := startReplicas(t, 2, cluster.ReplicaOptions{})
	killed := -1
	res := runCustom(t, scenario.Custom{
		Name: "replica-killed",
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			// No deregistration until the kill: the load balancer
			// controller reacts at once, and a hold answered before the
			// kill would leave the other replica nothing to take up.
			shared.Emulator.SetActionFaults("DeregisterTargets", albemu.Faults{ErrorFraction: 1})
			defer shared.Emulator.ClearFaults()
			if err := s.RollingRestart(ctx); err != nil {
				return err
			}
			// The HoldStarted event must be written before the kill, or it
			// could be lost with the replica and the resumed hold not show.
			err := s.Poll(ctx, "a replica to hold a pod", func(ctx context.Context) (bool, error) {
				if started, err := s.HoldStarted(ctx); !started || err != nil {
					return false, err
				}
				for i := range reps.Len() {
					if reps.Hold.Active(reps.HoldBackend(i)) > 0 {
						killed = i
						return true, nil
					}
				}
				return false, nil
			})
			if err != nil {
				return err
			}
			s.Progressf("killing replica %d of %d while it holds a pod", killed, reps.Len())
			err = reps.Kill(killed)
			shared.Emulator.ClearFaults()
			return err
		},
	})
	checkBounded(t, res, 3)
	checkOutcomes(t, res, contract.OutcomeQuiet)
	checkNoFailures(t, res)
	if started := res.Albdrain.Events[contract.ReasonHoldStarted]; started <= len(res.Terminations) {
		t.Errorf("%d HoldStarted events for %d pods: no hold was taken up by the surviving replica", started, len(res.Terminations))
	}
	if n := reps.Hold.Active(reps.HoldBackend(killed)); n != 0 {
		t.Errorf("%d connections still reach the killed replica", n)
	}
}

// The watcher's path to the apiserver cut (every connection closed,
// reconnections refused) while a rollout creates a pod, then restored. The
// same process, not restarted, serves the rest: the held pods and later the
// pod created during the cut, which its cache must have caught up with.
func TestAPIServerCutOffFromWatcher(t *testing.T) {
	reps := startReplicas(t, 1, cluster.ReplicaOptions{APIServerProxy: true})
	var duringCut corev1.Pod
	res := runCustom(t, scenario.Custom{
		Name: "apiserver-cut",
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			original, err := s.Pods(ctx)
			if err != nil {
				return err
			}
			s.Progressf("cutting the watcher off the apiserver")
			reps.APIServer.Cut()
			defer reps.APIServer.Restore()
			err = s.Poll(ctx, "the watcher's reconnections to be refused", func(context.Context) (bool, error) {
				return reps.APIServer.Refused() >= 3, nil
			})
			if err != nil {
				return err
			}
			if err := s.RollingRestart(ctx); err != nil {
				return err
			}
			err = s.Poll(ctx, "a new pod to be ready", func(ctx context.Context) (bool, error) {
				pods, err := s.Pods(ctx)
				for _, p := range pods {
					if !slices.ContainsFunc(original, func(o corev1.Pod) bool { return o.UID == p.UID }) && ready(&p) {
						duringCut = p
						return true, nil
					}
				}
				return false, err
			})
			if err != nil {
				return err
			}
			s.Progressf("restoring the watcher's apiserver connection after %d refused connections", reps.APIServer.Refused())
			reps.APIServer.Restore()
			if err := s.WaitSettled(ctx); err != nil {
				return err
			}
			return s.DeletePod(ctx, &duringCut)
		},
	})
	checkBounded(t, res, 4)
	checkOutcomes(t, res, contract.OutcomeQuiet)
	checkNoFailures(t, res)
	i := slices.IndexFunc(res.Terminations, func(term kubelet.Termination) bool { return term.UID == duringCut.UID })
	if i < 0 {
		t.Fatalf("pod %s, created during the cut, did not terminate", duringCut.Name)
	}
	if out := res.Terminations[i].Hooks[0].Output; !strings.Contains(out, "outcome="+string(contract.OutcomeQuiet)) {
		t.Errorf("pod %s, created during the cut: not released once deregistering and quiet; helper output:\n%s", duringCut.Name, out)
	}
}

// checkFellBackThenOwnPreStop checks that each hold the watcher had not
// answered fell back to the fixed sleep, that at least one did, and that
// the container's own preStop ran after it, before the hook ended.
func checkFellBackThenOwnPreStop(t *testing.T, hooks []kubelet.HookRun, rec *recorder) {
	t.Helper()
	hits := rec.hits()
	if len(hits) != len(hooks) {
		t.Errorf("the containers' own preStop ran %d times for %d holds", len(hits), len(hooks))
	}
	fellBack := 0
	for _, h := range hooks {
		// A hold the watcher answered before it went away (on a loaded
		// machine the test may see the hold start only after that) did not
		// need the fallback; its own preStop still runs, once.
		from := h.Start
		if answeredByWatcher(h.Output) {
			t.Logf("hold of %s was answered before the watcher went away", h.Duration())
		} else {
			if !strings.Contains(h.Output, "falling back to a fixed sleep") || h.Duration() < timings.Fallback {
				t.Errorf("hold of %s did not sleep the %s fallback; helper output:\n%s", h.Duration(), timings.Fallback, h.Output)
			}
			from = h.Start.Add(timings.Fallback)
			fellBack++
		}
		// One own preStop call per hold, after its fallback and before its end.
		i := slices.IndexFunc(hits, func(at time.Time) bool { return !at.Before(from) && !at.After(h.End) })
		if i < 0 {
			t.Errorf("no own preStop ran between %s and the end of the hold at %s", from.Format("15:04:05.000"), h.End.Format("15:04:05.000"))
			continue
		}
		hits = slices.Delete(hits, i, i+1)
	}
	if fellBack == 0 {
		t.Error("no hold fell back: the watcher answered every one, so the run did not test its absence")
	}
}

// answeredByWatcher reports whether a helper's log shows an answer from the
// watcher other than the fallback.
func answeredByWatcher(output string) bool {
	for _, line := range strings.Split(output, "\n") {
		if strings.Contains(line, `msg="watcher answered"`) && !strings.Contains(line, "outcome="+string(contract.OutcomeFallback)) {
			return true
		}
	}
	return false
}

// recorder stands for whatever a container's own preStop does: it records
// the time of each call.
type recorder struct {
	port int
	mu   sync.Mutex
	at   []time.Time
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/prestop" {
			r.mu.Lock()
			r.at = append(r.at, time.Now())
			r.mu.Unlock()
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// ownPreStop gives the application container a preStop of its own: an
// httpGet to the recorder.
func (r *recorder) ownPreStop(d *appsv1.Deployment) {
	d.Spec.Template.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
		HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Port: intstr.FromInt(r.port), Path: "/prestop"},
	}}
}

func (r *recorder) hits() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.at)
}

// startReplicas replaces the cluster's manager by n replicas behind
// Services until the test ends.
func startReplicas(t *testing.T, n int, o cluster.ReplicaOptions) *cluster.Replicas {
	t.Helper()
	reps, err := shared.StartReplicas(context.Background(), n, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A replica that exited on its own would show here: the fault
		// tests expect every surviving replica to have kept running.
		if err := reps.Close(context.Background()); err != nil {
			t.Errorf("stopping the replicas: %v", err)
		}
	})
	return reps
}

// ensureRunning starts the cluster's manager if a failed test left it stopped.
func ensureRunning(t *testing.T) {
	if err := shared.Albdrain.Start(context.Background()); err != nil && !strings.Contains(err.Error(), "already running") {
		t.Errorf("restarting albdrain's manager: %v", err)
	}
}

func failOpenCount(t *testing.T) float64 {
	t.Helper()
	n, err := shared.Env.FailOpenCount(context.Background(), "pods.albdrain.io")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func podsOf(ns string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := shared.Env.Client.List(context.Background(), &pods, client.InNamespace(ns))
	return pods.Items, err
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
