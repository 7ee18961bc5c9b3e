package lbc

import "fmt"

// NotReconciled says why no load balancer controller is known to have
// reconciled the binding's current spec, or returns "" when one has.
//
// The LBC writes status.observedGeneration only at the end of a successful
// reconcile, once the Service's targets are registered, and it sets the
// binding's readiness-gate conditions from that same reconcile. A binding
// without it has never been reconciled: the controller is down, watches
// other namespaces (--watch-namespace), belongs to another cluster, or fails
// on it. One whose observedGeneration lags metadata.generation has a spec
// change the controller has not (yet) applied. A gate for either may never
// be set, and would keep the pod NotReady for ever.
func NotReconciled(tgb *TargetGroupBinding) string {
	og := tgb.Status.ObservedGeneration
	switch {
	case og == nil:
		return fmt.Sprintf("TargetGroupBinding %s was never reconciled by a load balancer controller (no status.observedGeneration)", tgb.Name)
	case *og < tgb.Generation:
		return fmt.Sprintf("TargetGroupBinding %s: generation %d not reconciled by a load balancer controller (status.observedGeneration %d)", tgb.Name, tgb.Generation, *og)
	}
	return ""
}
