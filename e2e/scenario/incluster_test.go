package scenario_test

import (
	"context"
	"testing"

	"github.com/albdrain/albdrain/e2e/load"
	"github.com/albdrain/albdrain/e2e/scenario"
	"github.com/albdrain/albdrain/internal/contract"
)

// A client inside the cluster that keeps calling a pod straight at its IP
// keeps it from falling quiet, so its hold ends at its bound: never later,
// and the load balancer's clients lose nothing either way.
func TestInClusterTrafficHoldsAPodToItsBound(t *testing.T) {
	var inCluster *load.Run
	res, err := scenario.RunCustom(context.Background(), shared, scenario.Custom{
		Name: "in-cluster", Replicas: 2, Poisson: true,
		Progress: func(line string) { t.Log(line) },
		Disrupt: func(ctx context.Context, s *scenario.Steps) error {
			pods, err := s.Pods(ctx)
			if err != nil {
				return err
			}
			if inCluster, err = s.SendInCluster(ctx, &pods[0], 5); err != nil {
				return err
			}
			if err := s.DeletePod(ctx, &pods[0]); err != nil {
				return err
			}
			return s.WaitSettled(ctx)
		},
	})
	if inCluster != nil {
		inCluster.Stop()
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Errors > 0 {
		t.Errorf("%d of %d requests through the ALB failed %v", res.Summary.Errors, res.Summary.Requests, res.Summary.ByStatus)
	}
	if got := res.Albdrain.Events[contract.ReasonHoldBounded]; got != 1 {
		t.Errorf("%d HoldBounded events, want 1: the pod called from inside the cluster (events %v)", got, res.Albdrain.Events)
	}
}
