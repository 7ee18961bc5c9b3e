// Package targetgroups finds the ELBv2 target groups a pod is registered in,
// the port it is registered on, and the target groups' deregistration
// delays. It runs once per hold, from caches: Kubernetes objects come from
// the manager's informers through the shared lbc.Finder, and AWS facts from
// caches refreshed on their own schedule, so polling never repeats it.
package targetgroups

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/albdrain/albdrain/internal/lbc"
)

// Resolver finds the target groups a pod is registered in.
type Resolver interface {
	Registrations(ctx context.Context, pod *corev1.Pod) ([]lbc.Registration, error)
}

// Either resolves through Bindings while Use reports true, and through Tags
// otherwise: the TargetGroupBinding CRD may appear while the manager runs.
type Either struct {
	Use      func() bool
	Bindings Resolver
	Tags     Resolver
}

// Registrations implements Resolver.
func (e Either) Registrations(ctx context.Context, pod *corev1.Pod) ([]lbc.Registration, error) {
	if e.Use() {
		return e.Bindings.Registrations(ctx, pod)
	}
	return e.Tags.Registrations(ctx, pod)
}

// WithoutListing is e without its tag lookups: it resolves through Bindings
// while Use reports true and finds nothing otherwise. Tags relist the
// account's target groups and their tags for a pod that matches none, which
// a hold may pay for once but a caller asking about every pod on a schedule
// (the Warmer) would pay on every round.
func (e Either) WithoutListing() Resolver {
	return Either{Use: e.Use, Bindings: e.Bindings, Tags: none{}}
}

// none resolves no pod.
type none struct{}

func (none) Registrations(context.Context, *corev1.Pod) ([]lbc.Registration, error) { return nil, nil }
