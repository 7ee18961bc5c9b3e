package albemu

import (
	"context"
	"net/http"
	"slices"
)

// node is one of the ALB's nodes, one per availability zone. Clients reach
// it through one of the load balancer's DNS addresses; it forwards over its
// own keep-alive connections, on its own view of each target group's
// routing set, which follows the control plane after its own lag.
type node struct {
	index     int
	zone      string
	transport *http.Transport
	probes    *http.Client // its health checks
}

// zoneName is the availability zone of node i: us-east-1a, us-east-1b, ...
func zoneName(region string, i int) string {
	return region + string(rune('a'+i%26))
}

// Zones are the nodes' availability zones, in node order.
func (e *Emulator) Zones() []string {
	out := make([]string, len(e.nodes))
	for i, n := range e.nodes {
		out[i] = n.zone
	}
	return out
}

// nodeKey carries the node a client connection was spread to.
type nodeKey struct{}

func withNode(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, nodeKey{}, n)
}

func nodeOf(ctx context.Context) int {
	n, _ := ctx.Value(nodeKey{}).(int)
	return n
}

// NodeRoutingTargets is one node's routing set: the targets it may send new
// requests to.
func (e *Emulator) NodeRoutingTargets(tgARN string, n int) ([]Target, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(tgARN)
	if err != nil {
		return nil, err
	}
	if n < 0 || n >= len(tg.routes) {
		return nil, validationErrorf("no node %d: the emulator has %d", n, len(tg.routes))
	}
	return routeTargets(tg.routes[n], nil), nil
}

// routeTargets appends the targets of routes to out, each once.
func routeTargets(routes []*route, out []Target) []Target {
	for _, r := range routes {
		if !slices.Contains(out, r.target) {
			out = append(out, r.target)
		}
	}
	return out
}
