package faults_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/albdrain/albdrain/drain/hold"
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

// A full ELBv2 outage (every call answered 503) from the moment a pod's hold
// starts until that hold has ended. Nothing can tell when the ALB is done
// with the pod, and the load balancer controller cannot deregister it
// either: the watcher must end the hold by its fallback or at its bound,
// and say so; clients may see errors once the pod stops, which is what the
// fallback sleep can only shorten, not prevent.
func TestELBv2Outage(t *testing.T) {
	before := elbv2Attempts()
	res := runCustom(t, scenario.Custom{
		Name: "outage",
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			if err := s.RollingRestart(ctx); err != nil {
				return err
			}
			if err := s.Poll(ctx, "a hold to start", s.HoldStarted); err != nil {
				return err
			}
			s.Progressf("ELBv2 outage")
			shared.Emulator.SetFaults(albemu.Faults{Outage: albemu.OutageUnavailable})
			defer shared.Emulator.ClearFaults()
			return s.Poll(ctx, "the hold under the outage to end by timeout or fallback", func(ctx context.Context) (bool, error) {
				ev, err := s.Events(ctx)
				return ev[hold.ReasonHoldTimedOut]+ev[hold.ReasonHoldFellBack] > 0, err
			})
		},
	})
	attempts := delta(elbv2Attempts(), before)
	t.Logf("albdrain's DescribeTargetHealth attempts: %v", attempts)
	checkBounded(t, res, 3)
	checkOutcomes(t, res, contract.OutcomeQuiet, contract.OutcomeDeregistered, contract.OutcomeTimeout, contract.OutcomeFallback)
	if n := res.Albdrain.Holds[string(contract.OutcomeTimeout)] + res.Albdrain.Holds[string(contract.OutcomeFallback)]; n < 1 {
		t.Errorf("no hold ended by timeout or fallback: %v", res.Albdrain.Holds)
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
	checkOutcomes(t, res, contract.OutcomeQuiet, contract.OutcomeDeregistered, contract.OutcomeTimeout)
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
