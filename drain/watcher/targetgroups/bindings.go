package targetgroups

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/albdrain/albdrain/internal/lbc"
)

// Bindings resolves targets through the load balancer controller's
// TargetGroupBindings, asking the same lbc.Finder as the webhook: each ip
// binding of a Service that selects the pod leads to the target group the
// pod is registered in, on the port the controller registers.
type Bindings struct {
	Finder *lbc.Finder
}

// Targets implements Resolver.
func (b Bindings) Registrations(ctx context.Context, pod *corev1.Pod) ([]lbc.Registration, error) {
	res, err := b.Finder.Find(ctx, pod.Namespace, pod)
	if err != nil {
		return nil, fmt.Errorf("find the pod's backends: %w", err)
	}
	var out []lbc.Registration
	for _, be := range res.Backends {
		if be.TargetGroupARN == "" {
			continue // an Ingress backend whose binding does not exist yet
		}
		port, ok := lbc.RegisteredPort(&pod.Spec, be.TargetPort)
		if !ok {
			continue
		}
		if t := (lbc.Registration{TargetGroupARN: be.TargetGroupARN, Port: port}); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}
