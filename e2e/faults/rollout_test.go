package faults_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// albdrain's own rollout (issue 13 item 11): one of two replicas stopped as
// `helm upgrade` stops it, SIGTERM with its endpoint marked terminating,
// while it admits the workload's new pods and holds its terminating ones,
// and while the workload scales up (pods created) and then down (pods
// terminated). The replica keeps admitting and holding until it is out of
// its Service's EndpointSlice and the Service has followed; its holds then
// move to the other replica. No pod is created unmutated, no admission
// fails open, and no hold falls back or is cut.
//
// The Service is a stand-in (cluster.ReplicaOptions.Endpoints): the
// apiserver refuses loopback addresses in EndpointSlices, so the harness
// writes the slice with non-loopback addresses as data only and a TCP
// proxy routes by it, as kube-proxy would, after a lag.
func TestAlbdrainRollout(t *testing.T) {
	// slowHealth outlasts the stopping replica's settle time (2s), and
	// twice over fits in a hold's bound (7s): the hold moved, and waits
	// for a slow answer on each replica.
	const slowHealth = 3 * time.Second
	reps := startReplicas(t, 2, cluster.ReplicaOptions{Endpoints: true})
	failOpenBefore := failOpenCount(t)
	const size = 3
	stopped := -1
	const maxRestarts = 5
	var probe admissionProbe
	res := runCustom(t, scenario.Custom{
		Name:     "albdrain-rollout",
		Replicas: size,
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			// Slow target-health answers keep a hold on the watcher for
			// longer than the stopping replica's settle time, so the stop
			// finds it in flight.
			shared.Emulator.SetActionFaults("DescribeTargetHealth", albemu.Faults{Latency: slowHealth, UserAgent: "app/" + cluster.AlbdrainAppID})
			defer shared.Emulator.ClearFaults()
			// The replica to stop carries the apiserver's connection to the
			// webhook and has just taken a hold, so both are in flight
			// when it is told to stop. The Service picks replicas at
			// random: another rolling restart brings more holds if none
			// landed there.
			for attempt := 1; stopped < 0; attempt++ {
				if err := s.RollingRestart(ctx); err != nil {
					return err
				}
				var err error
				if stopped, err = newHoldWithWebhook(ctx, s, reps); err != nil {
					return err
				}
				if stopped < 0 && attempt == maxRestarts {
					return fmt.Errorf("no hold reached the replica serving the webhook in %d rolling restarts", attempt)
				}
			}
			s.Progressf("stopping replica %d of %d as a rollout of albdrain does", stopped, reps.Len())
			terminated := make(chan error, 1)
			go func() { terminated <- reps.Terminate(ctx, stopped) }()
			probed := make(chan error, 1)
			stopProbe := make(chan struct{})
			go func() { probed <- probe.run(ctx, s.Namespace(), stopProbe) }()
			err := s.Scale(ctx, size+2)
			err = errors.Join(err, <-terminated)
			close(stopProbe)
			if err := errors.Join(err, <-probed); err != nil {
				return err
			}
			s.Progressf("replica %d has stopped", stopped)
			shared.Emulator.ClearFaults()
			// The pods scaled away are registered first, so each hold has
			// a target to wait for.
			if err := s.WaitSettled(ctx); err != nil {
				return err
			}
			if n := reps.Webhook.Active(reps.WebhookBackend(stopped)) + reps.Hold.Active(reps.HoldBackend(stopped)); n != 0 {
				return errors.New("connections still reach the stopped replica")
			}
			return s.Scale(ctx, size)
		},
	})

	// Every pod of the run was mutated: those that terminated ran the
	// injected helper (checkBounded), those left carry the managed label.
	hooks := checkBounded(t, res, len(res.Terminations))
	var pods corev1.PodList
	if err := shared.Env.Client.List(context.Background(), &pods, client.InNamespace(res.Namespace)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Labels[contract.ManagedLabel] != "true" {
			t.Errorf("pod %s was admitted unmutated", p.Name)
		}
	}
	// The webhook's count includes the workload's first pods.
	created := len(res.Terminations) + len(pods.Items)
	if failedOpen := failOpenCount(t) - failOpenBefore; failedOpen != 0 {
		t.Errorf("%v admissions to albdrain's webhook failed open", failedOpen)
	}
	if res.Albdrain.Injected != float64(created+probe.total) {
		t.Errorf("the webhook injected %v pods of the %d created and %d probed", res.Albdrain.Injected, created, probe.total)
	}
	t.Logf("%d admissions probed while replica %d stopped, %d unmutated", probe.total, stopped, probe.unmutated)
	if probe.total == 0 || probe.unmutated != 0 {
		t.Errorf("%d of %d admissions probed while a replica stopped came back unmutated", probe.unmutated, probe.total)
	}
	// No hold fell back, timed out or was cut short: the watcher, on
	// whichever replica, answered each once deregistration had begun, and
	// the helper then waited for quiet (bound: a pod still had traffic at
	// the quiet period's bound), or, its answer slowed, once the target had
	// gone (deregistered).
	checkOutcomes(t, res, contract.OutcomeQuiet, contract.OutcomeBound, contract.OutcomeDeregistered)
	checkNoFailures(t, res)
	moved := 0
	for _, h := range hooks {
		if strings.Contains(h.Output, "falling back") {
			t.Errorf("a hold fell back; helper output:\n%s", h.Output)
		}
		if strings.Contains(h.Output, "watcher stopping") {
			moved++
		}
	}
	started := res.Albdrain.Events[contract.ReasonHoldStarted]
	t.Logf("%d pods created, %d terminated; %d holds moved off the stopped replica (%d HoldStarted events)", created, len(res.Terminations), moved, started)
	if moved == 0 || started <= len(res.Terminations) {
		t.Errorf("%d holds answered \"watcher stopping\", %d HoldStarted events for %d pods: no hold in flight moved to the other replica", moved, started, len(res.Terminations))
	}
}

// admissionProbe creates the workload's pod in dry-run, one every
// probeEvery while a replica stops, as a ReplicaSet controller creating
// pods throughout would: each goes through admission, so albdrain must
// answer it, and nothing is left to clean up.
type admissionProbe struct{ total, unmutated int }

const probeEvery = 20 * time.Millisecond

func (p *admissionProbe) run(ctx context.Context, ns string, stop <-chan struct{}) error {
	var d appsv1.Deployment
	// "web" is the scenario's Deployment.
	if err := shared.Env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &d); err != nil {
		return err
	}
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "probe-", Labels: maps.Clone(d.Spec.Template.Labels), Annotations: maps.Clone(d.Spec.Template.Annotations)},
			Spec:       *d.Spec.Template.Spec.DeepCopy(),
		}
		if err := shared.Env.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			return fmt.Errorf("dry-run pod creation: %w", err)
		}
		p.total++
		if pod.Labels[contract.ManagedLabel] != "true" {
			p.unmutated++
		}
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// newHoldWithWebhook waits, while the rolling restart's pods terminate, for
// a replica that carries the apiserver's connection to the webhook to take
// a new hold, and returns it; -1 if every hold of the restart ended first.
func newHoldWithWebhook(ctx context.Context, s *scenario.Steps, reps *cluster.Replicas) (int, error) {
	holding := make([]int, reps.Len())
	found := -1
	began := false
	err := s.Poll(ctx, "a new hold on a replica serving the webhook, or the restart's holds to end", func(context.Context) (bool, error) {
		active := 0
		for i := range reps.Len() {
			n := reps.Hold.Active(reps.HoldBackend(i))
			active += n
			if n > holding[i] && reps.Webhook.Active(reps.WebhookBackend(i)) > 0 {
				found = i
				return true, nil
			}
			holding[i] = n
		}
		began = began || active > 0
		return began && active == 0, nil
	})
	return found, err
}
