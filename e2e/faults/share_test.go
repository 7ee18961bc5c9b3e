package faults_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// Three replicas share the polling of the rollout's target group: the
// replicas that hold pods of a group another replica owns read that
// replica's polls (over HTTPS, authenticated by their albdrain tokens)
// rather than polling ELBv2 themselves, and every hold still ends on its
// own evidence.
func TestReplicasSharePolls(t *testing.T) {
	// The chart turns sharing on; the flag says so here whatever the default.
	startReplicas(t, 3, cluster.ReplicaOptions{Flags: map[string]string{"--share-polls": "true"}})
	polls := app.InProcess().Metrics.Watcher.SharedPolls
	readBefore := testutil.ToFloat64(polls.WithLabelValues("read"))
	failedBefore := testutil.ToFloat64(polls.WithLabelValues("failed"))
	res := runCustom(t, scenario.Custom{
		Name:     "shared-polls",
		Replicas: 4,
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			return s.RollingRestart(ctx)
		},
	})
	checkBounded(t, res, 4)
	checkNoFailures(t, res)
	// Outcomes from this run's own events: the outcome counter is the
	// process's, which a late end report of an earlier test's pod can move.
	// A hold ends released or at its bound: a shared poll answers each
	// hold as its own would. The bound is the quiet rule's, not sharing's:
	// on a loaded machine a helper that samples late sees a node only by a
	// few gaps and waits out the longest quiet period, which the bound cuts
	// short. What sharing could break is an answer: a timeout or fallback.
	ev := res.Albdrain.Events
	if n := ev[contract.ReasonHoldReleased] + ev[contract.ReasonHoldBounded]; n != len(res.Terminations) {
		t.Errorf("%d HoldReleased and HoldBounded events for %d terminated pods (events %v)", n, len(res.Terminations), ev)
	}
	for _, r := range []string{contract.ReasonHoldTimedOut, contract.ReasonHoldFellBack} {
		if ev[r] != 0 {
			t.Errorf("%d %s events: a hold had no answer (events %v)", ev[r], r, ev)
		}
	}
	read := testutil.ToFloat64(polls.WithLabelValues("read")) - readBefore
	failed := testutil.ToFloat64(polls.WithLabelValues("failed")) - failedBefore
	t.Logf("polls read from another replica: %v; failed reads (polled locally instead): %v", read, failed)
	if read == 0 {
		t.Error("no replica read another's poll: each polled the group itself")
	}
}
