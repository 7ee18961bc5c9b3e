package albemu

// RoutingSets is RoutingTargets for every target group at once, by ARN,
// taken under one lock so the sets are mutually consistent. With Wait it
// lets a caller time the moment the data plane stops routing to a target
// without knowing the target groups in advance.
func (e *Emulator) RoutingSets() map[string][]Target {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string][]Target, len(e.order))
	for _, tg := range e.order {
		var set []Target
		for _, routes := range tg.routes {
			set = routeTargets(routes, set)
		}
		out[tg.arn] = set
	}
	return out
}
