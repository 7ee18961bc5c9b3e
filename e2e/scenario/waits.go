package scenario

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// pollInterval paces the polls of the apiserver; the ALB emulator is
// waited on through its own change notifications instead.
const pollInterval = 100 * time.Millisecond

// poll waits for cond until ctx's deadline.
func poll(ctx context.Context, what string, cond wait.ConditionWithContextFunc) error {
	if err := wait.PollUntilContextCancel(ctx, pollInterval, true, cond); err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

// pods lists the application's pods.
func (r *runner) pods(ctx context.Context) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := r.c.Env.Client.List(ctx, &pods, client.InNamespace(r.ns), client.MatchingLabels(appLabels)); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// waitSettled waits until the Deployment has fully rolled out, every pod
// that left has been removed, and the ALB routes to exactly the serving
// pods, all healthy and none draining: the end of every disruption.
func (r *runner) waitSettled(ctx context.Context) error {
	want := map[albemu.Target]bool{}
	err := poll(ctx, "the Deployment to roll out and replaced pods to be removed", func(ctx context.Context) (bool, error) {
		var d appsv1.Deployment
		if err := r.c.Env.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: appName}, &d); err != nil {
			return false, err
		}
		n := *d.Spec.Replicas
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != n || st.Replicas != n || st.ReadyReplicas != n || st.AvailableReplicas != n {
			return false, nil
		}
		pods, err := r.pods(ctx)
		if err != nil || len(pods) != int(n) {
			return false, err
		}
		clear(want)
		for _, p := range pods {
			if p.DeletionTimestamp != nil || p.Status.PodIP == "" {
				return false, nil
			}
			want[albemu.Target{ID: p.Status.PodIP, Port: podPort}] = true
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	same := func(ts []albemu.Target) bool {
		if len(ts) != len(want) {
			return false
		}
		for _, t := range ts {
			if !want[t] {
				return false
			}
		}
		return true
	}
	err = r.c.Emulator.Wait(ctx, func() bool {
		health, err := r.c.Emulator.TargetHealth(r.arn)
		if err != nil {
			return false
		}
		var healthy []albemu.Target
		for _, h := range health {
			if h.State != albemu.StateHealthy {
				return false
			}
			healthy = append(healthy, h.Target)
		}
		routing, err := r.c.Emulator.RoutingTargets(r.arn)
		return err == nil && same(healthy) && same(routing)
	})
	if err != nil {
		return fmt.Errorf("waiting for the ALB to route to exactly the serving pods: %w", err)
	}
	return nil
}
