package scenario

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/internal/contract"
)

// disrupt causes the scenario's disruption and returns once it has been
// set in motion; waitSettled waits for its end.
func (r *runner) disrupt(ctx context.Context, res *Result) error {
	switch r.spec.Action {
	case RollingRestart:
		r.progress("rolling restart of deployment/%s", appName)
		return r.restartDeployment(ctx)
	case ScaleDown:
		r.progress("scaling deployment/%s from %d to 1", appName, r.spec.Replicas)
		return r.updateDeployment(ctx, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](1) })
	case Evict:
		return r.evictAll(ctx)
	case WatcherRestart:
		pods, err := r.pods(ctx)
		if err != nil {
			return err
		}
		original := map[types.UID]bool{}
		for _, p := range pods {
			original[p.UID] = true
		}
		if r.spec.Protection == Albdrain {
			// Deregistration waits for the restart: until the target
			// leaves, no policy can end the watcher's part of a hold, so
			// the restart always drops a hold in progress. Under quiet the
			// watcher hands a hold to the helper as soon as deregistration
			// begins, which could otherwise come before the restart.
			r.c.Emulator.SetActionFaults("DeregisterTargets", albemu.Faults{Outage: albemu.OutageUnavailable})
			defer r.c.Emulator.SetActionFaults("DeregisterTargets", albemu.Faults{})
		}
		r.progress("rolling restart of deployment/%s", appName)
		if err := r.restartDeployment(ctx); err != nil {
			return err
		}
		return r.restartWatcherMidHold(ctx, original, res)
	}
	return fmt.Errorf("unknown action %q", r.spec.Action)
}

func (r *runner) updateDeployment(ctx context.Context, change func(*appsv1.Deployment)) error {
	var d appsv1.Deployment
	if err := r.c.Env.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: appName}, &d); err != nil {
		return err
	}
	patch := client.MergeFrom(d.DeepCopy())
	change(&d)
	return r.c.Env.Client.Patch(ctx, &d, patch)
}

// restartDeployment does what `kubectl rollout restart` does: stamp the pod
// template so every pod is replaced.
func (r *runner) restartDeployment(ctx context.Context) error {
	return r.updateDeployment(ctx, func(d *appsv1.Deployment) {
		if d.Spec.Template.Annotations == nil {
			d.Spec.Template.Annotations = map[string]string{}
		}
		d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339Nano)
	})
}

// evictAll evicts every pod present now, one after the other, retrying
// while the PodDisruptionBudget refuses (429), as `kubectl drain` does.
func (r *runner) evictAll(ctx context.Context) error {
	pods, err := r.pods(ctx)
	if err != nil {
		return err
	}
	for i := range pods {
		pod := &pods[i]
		r.progress("evicting pod %s (%d of %d)", pod.Name, i+1, len(pods))
		err := poll(ctx, "the disruption budget to allow evicting "+pod.Name, func(ctx context.Context) (bool, error) {
			ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}}
			err := r.c.Env.Client.SubResource("eviction").Create(ctx, pod, ev)
			switch {
			case err == nil, apierrors.IsNotFound(err):
				return true, nil
			case apierrors.IsTooManyRequests(err):
				return false, nil
			}
			return false, err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// restartWatcherMidHold restarts albdrain's manager in the middle of the
// rollout: under albdrain once the watcher holds a pod, so the restart
// drops a hold in progress and the helper has to retry; otherwise once the
// first original pod has begun terminating (without a hold it is gone at
// once, so the rollout is what gets waited for).
func (r *runner) restartWatcherMidHold(ctx context.Context, original map[types.UID]bool, res *Result) error {
	what, cond := "the rollout to replace a pod", func(ctx context.Context) (bool, error) {
		pods, err := r.pods(ctx)
		if err != nil {
			return false, err
		}
		present := 0
		for _, p := range pods {
			if original[p.UID] && p.DeletionTimestamp == nil {
				present++
			}
		}
		return present < len(original), nil
	}
	if r.spec.Protection == Albdrain {
		what, cond = "the watcher to start holding a pod", r.holdStarted
	}
	if err := poll(ctx, what, cond); err != nil {
		return err
	}
	var err error
	if res.TerminatingAtRestart, err = r.terminating(ctx); err != nil {
		return err
	}
	r.progress("restarting albdrain's manager with %d pod(s) terminating", res.TerminatingAtRestart)
	return r.c.Albdrain.Restart(ctx)
}

func (r *runner) terminating(ctx context.Context) (int, error) {
	pods, err := r.pods(ctx)
	n := 0
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			n++
		}
	}
	return n, err
}

// holdStarted reports whether the watcher has recorded a HoldStarted event
// in the namespace.
func (r *runner) holdStarted(ctx context.Context) (bool, error) {
	events, err := r.events(ctx)
	return events[contract.ReasonHoldStarted] > 0, err
}

// events counts the events on the namespace's pods by reason.
func (r *runner) events(ctx context.Context) (map[string]int, error) {
	var list eventsv1.EventList
	if err := r.c.Env.Client.List(ctx, &list, client.InNamespace(r.ns)); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, e := range list.Items {
		if e.Regarding.Kind == "Pod" {
			out[e.Reason]++
		}
	}
	return out, nil
}
