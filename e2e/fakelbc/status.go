package fakelbc

import (
	"context"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/lbc"
)

// MarkReconciled writes the binding's status.observedGeneration as the real
// controller does at the end of a successful reconcile, after registering
// the targets. The stand-in calls it after each reconcile; tests that run
// no stand-in call it for a binding a controller is to have reconciled.
func MarkReconciled(ctx context.Context, c client.Client, tgb *lbc.TargetGroupBinding) error {
	if og := tgb.Status.ObservedGeneration; og != nil && *og == tgb.Generation {
		return nil
	}
	base := tgb.DeepCopy()
	tgb.Status.ObservedGeneration = ptr.To(tgb.Generation)
	return client.IgnoreNotFound(c.Status().Patch(ctx, tgb, client.MergeFrom(base)))
}
