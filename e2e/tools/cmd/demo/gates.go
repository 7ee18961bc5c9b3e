package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/lbc"
)

// writeGateWaits prints how long the pods left in namespace ns waited,
// after their containers were ready, for the load balancer controller to
// set their readiness gate: the health checks, then the controller's
// requeue before it reads the health again. That wait is what the gates
// add to a rollout.
func writeGateWaits(ctx context.Context, out io.Writer, c client.Reader, ns string, requeue time.Duration) error {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		return err
	}
	var waits []time.Duration
	for _, p := range pods.Items {
		var ready, gate *corev1.PodCondition
		for i, cond := range p.Status.Conditions {
			switch {
			case cond.Type == corev1.ContainersReady && cond.Status == corev1.ConditionTrue:
				ready = &p.Status.Conditions[i]
			case strings.HasPrefix(string(cond.Type), lbc.ReadinessGatePrefix) && cond.Status == corev1.ConditionTrue:
				gate = &p.Status.Conditions[i]
			}
		}
		if ready != nil && gate != nil {
			waits = append(waits, max(gate.LastTransitionTime.Sub(ready.LastTransitionTime.Time), 0))
		}
	}
	if len(waits) == 0 {
		return nil
	}
	var sum, longest time.Duration
	for _, w := range waits {
		sum += w
		longest = max(longest, w)
	}
	fmt.Fprintf(out, "Readiness gates (albdrain run): the %d new pods waited %.1f s on average (at most %.1f s)\n"+
		"from ready containers to their gate: health checks, then the load balancer controller's\n"+
		"requeue (%s here) before it reads target health again.\n",
		len(waits), (sum / time.Duration(len(waits))).Seconds(), longest.Seconds(), requeue)
	return nil
}
