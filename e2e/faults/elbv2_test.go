package faults_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// The faults hit the whole emulated ELBv2 API, so the load balancer
// controller suffers them too, as it would in AWS, where the limits and
// outages are the account's and the region's.

// Half of all ELBv2 calls throttled for a whole rolling restart: the SDK
// retries, a poll fails only when every attempt is throttled, and a hold
// falls back only after several failed polls in a row. Every hold still
// ends within its bound, with an outcome counted once in metrics and events.
func TestELBv2Throttled(t *testing.T) {
	before := elbv2Attempts()
	res := runCustom(t, scenario.Custom{
		Name: "throttled",
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			shared.Emulator.SetFaults(albemu.Faults{ThrottleFraction: 0.5})
			defer shared.Emulator.ClearFaults()
			if err := s.RollingRestart(ctx); err != nil {
				return err
			}
			return s.WaitSettled(ctx)
		},
	})
	attempts := delta(elbv2Attempts(), before)
	t.Logf("albdrain's DescribeTargetHealth attempts: %v", attempts)
	checkBounded(t, res, 3)
	// Throttled polls, the controller's included, can leave the helper's
	// quiet wait too little time: bound, as timeout, is a release on a
	// time bound, which checkBounded holds within the grace period.
	checkOutcomes(t, res, contract.OutcomeQuiet, contract.OutcomeDeregistered, contract.OutcomeBound, contract.OutcomeTimeout, contract.OutcomeFallback)
	if attempts["throttled"] == 0 {
		t.Error("no DescribeTargetHealth attempt of albdrain's was throttled: the fault missed the watcher")
	}
}

// A full ELBv2 outage (every call answered 503) from before a pod is
// deleted until its hold has ended. Nothing can tell when the ALB is done
// with the pod, and the load balancer controller cannot deregister it
// either: the watcher must end the hold by its fallback or at its bound,
// and say so; clients may see errors once the pod stops, which is what the
// fallback sleep can only shorten, not prevent. The outage begins before
// the deletion, not once a hold has started: on a loaded machine a hold
// can be answered before the test sees it start, and a rolling restart
// under the outage stalls (its new pods cannot register), so no later hold
// would come.
func TestELBv2Outage(t *testing.T) {
	before := elbv2Attempts()
	res := runCustom(t, scenario.Custom{
		Name: "outage",
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			pods, err := s.Pods(ctx)
			if err != nil {
				return err
			}
			s.Progressf("ELBv2 outage")
			shared.Emulator.SetFaults(albemu.Faults{Outage: albemu.OutageUnavailable})
			defer shared.Emulator.ClearFaults()
			if err := s.DeletePod(ctx, &pods[0]); err != nil {
				return err
			}
			return s.Poll(ctx, "the hold under the outage to end by timeout or fallback", func(ctx context.Context) (bool, error) {
				ev, err := s.Events(ctx)
				return ev[contract.ReasonHoldTimedOut]+ev[contract.ReasonHoldFellBack] > 0, err
			})
		},
	})
	attempts := delta(elbv2Attempts(), before)
	t.Logf("albdrain's DescribeTargetHealth attempts: %v", attempts)
	checkBounded(t, res, 1)
	checkOutcomes(t, res, contract.OutcomeTimeout, contract.OutcomeFallback)
	if n := res.Albdrain.Outcomes[string(contract.OutcomeTimeout)] + res.Albdrain.Outcomes[string(contract.OutcomeFallback)]; n < 1 {
		t.Errorf("no hold ended by timeout or fallback: %v", res.Albdrain.Outcomes)
	}
	if attempts["error"] == 0 {
		t.Error("no DescribeTargetHealth attempt of albdrain's failed: the outage missed the watcher")
	}
}

// 5 s added to every ELBv2 call while the original pods are replaced. The
// latency exceeds the compressed hold margin (3 s, 30 s by default): holds
// end at their bound rather than on a late answer, and never later.
func TestELBv2Latency(t *testing.T) {
	const latency = 5 * time.Second
	var from, to time.Time
	res := runCustom(t, scenario.Custom{
		Name:     "latency",
		Replicas: 2,
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			original, err := s.Pods(ctx)
			if err != nil {
				return err
			}
			s.Progressf("adding %s to every ELBv2 call", latency)
			shared.Emulator.SetFaults(albemu.Faults{Latency: latency})
			from = time.Now()
			defer func() {
				shared.Emulator.ClearFaults()
				to = time.Now()
			}()
			if err := s.RollingRestart(ctx); err != nil {
				return err
			}
			return s.Poll(ctx, "every original pod to terminate", allTerminated(s, original))
		},
	})
	checkBounded(t, res, 2)
	// bound: the late answer said draining had begun, and the bound it
	// carried came before the pod's traffic stopped.
	checkOutcomes(t, res, contract.OutcomeQuiet, contract.OutcomeBound, contract.OutcomeDeregistered, contract.OutcomeTimeout)
	slowed := 0
	for _, c := range res.Calls {
		if !cluster.IsLBCCall(c) && c.Time.After(from) && c.Time.Before(to) {
			slowed++
		}
	}
	t.Logf("albdrain made %d ELBv2 calls under the added latency", slowed)
	if slowed == 0 {
		t.Error("albdrain made no ELBv2 call under the added latency: the fault missed the watcher")
	}
}

// A DescribeTargetHealth that hangs (the emulator's latency fault, a minute
// against a 1 s call timeout) from before a pod is deleted. Every ELBv2
// call is bounded, so each hung poll fails, polling goes on, and the hold
// reaches its fallback after the failed polls; without the bound the first
// call stops its target group's poll loop and the hold runs to its
// deadline. The hold margin is raised so that the deadline cannot come
// first on a slow machine.
func TestELBv2Hung(t *testing.T) {
	ctx := context.Background()
	if err := shared.Albdrain.RestartWith(ctx, "--aws-call-timeout=1s", "--hold-margin=60s"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shared.Albdrain.RestartWith(ctx, "--aws-call-timeout="+elbv2.DefaultCallTimeout.String(), "--hold-margin="+timings.HoldMargin.String()); err != nil {
			t.Errorf("restore albdrain: %v", err)
		}
	})
	res := runCustom(t, scenario.Custom{
		Name: "hung",
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			pods, err := s.Pods(ctx)
			if err != nil {
				return err
			}
			s.Progressf("every ELBv2 call hangs")
			shared.Emulator.SetFaults(albemu.Faults{Latency: time.Minute})
			defer shared.Emulator.ClearFaults()
			if err := s.DeletePod(ctx, &pods[0]); err != nil {
				return err
			}
			return s.Poll(ctx, "the hold on the hung API to fall back", func(ctx context.Context) (bool, error) {
				ev, err := s.Events(ctx)
				return ev[contract.ReasonHoldFellBack] > 0, err
			})
		},
	})
	checkBounded(t, res, 1)
	checkOutcomes(t, res, contract.OutcomeFallback)
}

// allTerminated reports whether every pod of pods has terminated.
func allTerminated(s *scenario.Steps, pods []corev1.Pod) func(context.Context) (bool, error) {
	return func(context.Context) (bool, error) {
		done := map[types.UID]bool{}
		for _, term := range s.Terminations() {
			done[term.UID] = true
		}
		for _, p := range pods {
			if !done[p.UID] {
				return false, nil
			}
		}
		return true, nil
	}
}
