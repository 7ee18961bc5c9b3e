package fakelbc

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
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

// WaitReconciled waits until a controller has reconciled the binding's
// current generation: from then on the webhook gives pods its readiness
// gate, so their readiness means their target is healthy.
func WaitReconciled(ctx context.Context, c client.Reader, key client.ObjectKey) error {
	return wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var tgb lbc.TargetGroupBinding
		if err := c.Get(ctx, key, &tgb); err != nil {
			return false, err
		}
		return lbc.NotReconciled(&tgb) == "", nil
	})
}
