package contract

import "encoding/json"

// Record is what the webhook wrote into a pod and why, stored as JSON in the
// pod's contract.InjectedKey annotation for people and for the next pass.
type Record struct {
	Mode           string   `json:"mode"`
	MaxHoldSeconds int64    `json:"maxHoldSeconds"`
	Containers     []string `json:"containers"`
	// Sidecars are the native sidecars whose own preStop was moved behind
	// a hold, so it no longer runs alongside the app containers' holds.
	Sidecars            []string `json:"sidecars,omitempty"`
	Ports               []int32  `json:"ports"`
	Services            []string `json:"services"`
	TargetGroupBindings []string `json:"targetGroupBindings,omitempty"`
	Ingresses           []string `json:"ingresses,omitempty"`
	// Routes and Gateways are the Gateway API routes and LBC Gateways in front.
	Routes   []string `json:"routes,omitempty"`
	Gateways []string `json:"gateways,omitempty"`
	// LoadBalancers are the kinds (alb, nlb) of the load balancers in front,
	// whose release semantics the helper and watcher apply.
	LoadBalancers []string `json:"loadBalancers,omitempty"`
	// ReadinessGatesSkipped says why the readiness gates of some bindings
	// were left out: no load balancer controller had reconciled them, so
	// the gate might never be set. The hold is injected all the same.
	ReadinessGatesSkipped []string `json:"readinessGatesSkipped,omitempty"`
	// ShutdownBudgetSeconds is the application's own shutdown budget, its
	// grace period before injection, which the hold comes on top of.
	ShutdownBudgetSeconds *int64 `json:"shutdownBudgetSeconds,omitempty"`
}

// ParseRecord returns the record the webhook wrote into a pod's
// annotations, or nil when there is none or it is unreadable (then a pass
// starts afresh: every step checks the pod itself before adding).
func ParseRecord(annotations map[string]string) *Record {
	v, ok := annotations[InjectedKey]
	if !ok {
		return nil
	}
	var r Record
	if json.Unmarshal([]byte(v), &r) != nil {
		return nil
	}
	return &r
}
