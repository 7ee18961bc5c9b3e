package targetgroups

import (
	"context"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Warmer keeps the deregistration delays and settings of the target groups
// that managed pods are registered in cached, so that a node drain's holds,
// starting together across dozens of groups, find them ready. Fetched on
// demand instead, a hold's lookups would queue on the Describe budget ahead
// of the polls that tell it when its target drains.
//
// It refreshes an entry once it is half as old as the caches' MaxAge, so a
// hold never meets an expired one, and paces its calls with Pace, a share
// of the budget that leaves the polls the rest.
type Warmer struct {
	// Pods reads the manager's cache, which holds managed pods only.
	Pods     client.Reader
	Resolver Resolver
	Delays   *Delays
	Settings *Settings
	// Every is how often the managed pods' groups are listed again, so a
	// new group is warmed within it.
	Every time.Duration
	Pace  *rate.Limiter
	// Warm, when set, is given the number of groups warm after each round.
	Warm func(n int)
}

// NeedLeaderElection is false: every replica serves holds from its own caches.
func (w *Warmer) NeedLeaderElection() bool { return false }

// Start warms the caches every w.Every until ctx ends. A failed round is
// logged and retried at the next: holds still fetch what they miss.
func (w *Warmer) Start(ctx context.Context) error {
	t := time.NewTicker(w.Every)
	defer t.Stop()
	failing := false
	for {
		n, err := w.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// Said once when it starts failing and once when it recovers: an
		// install without AWS (sleep mode) fails every round.
		switch {
		case err != nil && !failing:
			log.FromContext(ctx).Info("warming target-group caches failed; holds will look up what they miss", "err", err)
		case err == nil && failing:
			log.FromContext(ctx).Info("warming target-group caches works again", "warm", n)
		}
		failing = err != nil
		if w.Warm != nil {
			w.Warm(n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round refreshes what is due and returns how many of the managed pods'
// groups are warm.
func (w *Warmer) round(ctx context.Context) (int, error) {
	arns, err := w.groups(ctx)
	if err != nil {
		return 0, err
	}
	refresh := w.Settings.MaxAge / 2
	if due(&w.Settings.cache, arns, refresh) {
		start := time.Now()
		if err := w.Settings.listAll(ctx, w.Pace); err != nil {
			return 0, err
		}
		w.Settings.cache.prune(start.Add(-w.Settings.MaxAge))
	}
	warm := 0
	for _, arn := range arns {
		if age, ok := w.Delays.cache.age(arn); !ok || age >= w.Delays.MaxAge/2 {
			if err := w.Pace.Wait(ctx); err != nil {
				return warm, err
			}
			if _, err := w.Delays.delay(ctx, arn, w.Delays.MaxAge/2); err != nil {
				log.FromContext(ctx).Info("could not warm a deregistration delay", "targetGroup", arn, "err", err)
				continue
			}
		}
		_, delayed := w.Delays.cache.fresh(arn, refresh)
		_, set := w.Settings.cache.fresh(arn, refresh)
		if delayed && set {
			warm++
		}
	}
	return warm, nil
}

// groups lists the target groups of the managed pods that are not
// terminating. Services select pods by their labels, so one pod per label
// set in a namespace is resolved: a ReplicaSet's pods share theirs, and a
// StatefulSet's pod-name label sets each of its pods apart. A group missed
// (pods of one label set but different ports) is looked up by its hold, as
// without warming.
func (w *Warmer) groups(ctx context.Context) ([]string, error) {
	var pods corev1.PodList
	if err := w.Pods.List(ctx, &pods, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	resolved := map[string]bool{}
	seen := map[string]bool{}
	var arns []string
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil {
			continue
		}
		key := pod.Namespace + "/" + labels.Set(pod.Labels).String()
		if resolved[key] {
			continue
		}
		resolved[key] = true
		regs, err := w.Resolver.Registrations(ctx, pod)
		if err != nil {
			return nil, err
		}
		for _, r := range regs {
			if !seen[r.TargetGroupARN] {
				seen[r.TargetGroupARN] = true
				arns = append(arns, r.TargetGroupARN)
			}
		}
	}
	return arns, nil
}

// due reports whether any of arns has no cached value younger than refresh.
func due[T any](c *ttlCache[T], arns []string, refresh time.Duration) bool {
	for _, arn := range arns {
		if _, ok := c.fresh(arn, refresh); !ok {
			return true
		}
	}
	return false
}
