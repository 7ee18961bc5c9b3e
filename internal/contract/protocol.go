package contract

import "time"

// The hold protocol between the helper and the watcher. EnvWatcherURL is the
// watcher's base URL (scheme, host and port, e.g.
// https://albdrain.albdrain-system.svc:9443); the helper POSTs a HoldRequest
// as JSON to that URL with HoldPath appended. The response arrives when the
// pod may stop.
//
// Status codes: 200 carries a HoldResponse; 503 (and 502, 504, 429) mean
// "retry, possibly against another replica"; 409 whose body starts with
// NotTerminatingMessage means the pod is not going away (no deletion, no
// eviction or node shutdown by the kubelet: a probe killed the container),
// and the helper releases at once; any other status is final and the
// helper falls back to its fixed sleep.

// NotTerminatingMessage starts the body of the watcher's 409 for a pod that
// is not going away, which tells it from its other 409s (a same-named
// successor of the pod).
const NotTerminatingMessage = "the pod is not terminating"

// HoldPath is the path, under EnvWatcherURL, the helper POSTs holds to.
const HoldPath = "/v1/hold"

// MaxHoldRequestBytes bounds a HoldRequest body; the watcher rejects larger ones.
const MaxHoldRequestBytes = 4 << 10

// MaxHoldTimeout is the longest hold there can be: AWS's longest
// deregistration delay (3600 s) plus a margin for propagation. The webhook
// caps max-hold at it, and the watcher refuses a HoldRequest asking for more.
const MaxHoldTimeout = 3900 * time.Second

// HoldRequest asks the watcher to hold the calling pod.
type HoldRequest struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// UID guards against a same-named successor (a StatefulSet pod) taking
	// over a retried hold.
	UID string `json:"uid,omitempty"`
	// TimeoutMillis is what is left of the helper's max-hold when it sends
	// the request. Each retry sends what then remains, so the deadline
	// travels with the hold without comparing clocks across nodes.
	TimeoutMillis int64 `json:"timeoutMillis"`
	// BudgetMillis is the application's shutdown budget (Spec.Budget): the
	// watcher ends the hold that long before the pod's grace period ends,
	// or at half the grace period when the budget is longer, so a shortened
	// grace period (a drain's --grace-period, a spot interruption) still
	// leaves the application time to stop. Zero: the watcher's default.
	BudgetMillis int64 `json:"budgetMillis,omitempty"`
}

// HoldEndPath is the path, under EnvWatcherURL, where the helper reports
// how a hold handed to it (a Handoff) ended, as a HoldEnd. The
// report is best effort: one short request, whose answer is only logged.
const HoldEndPath = "/v1/hold/end"

// HoldResponse is the wire form of an Answer, which ends the watcher's part
// of a hold; the code reads and writes Answer, whose JSON this is.
type HoldResponse struct {
	Outcome Outcome `json:"outcome"`
	// Message says why, for the helper's log.
	Message string `json:"message,omitempty"`
	// BoundMillis is what is left, when the watcher answers, of the hold's
	// bound (the earliest of max-hold, the grace period less the
	// application's budget, and the deregistration delay plus margin):
	// whatever the outcome, the helper's quiet wait ends by then. Zero
	// means unknown (a watcher of an earlier version): max-hold bounds it.
	BoundMillis int64 `json:"boundMillis,omitempty"`
	// Traffic describes the load balancer's traffic to the pod, when the
	// watcher knows it; the helper's quiet period uses it.
	Traffic *Traffic `json:"traffic,omitempty"`
}

// Traffic is what the watcher knows of how the load balancer reaches the
// pod, from DescribeTargetGroups.
type Traffic struct {
	// BoundMillis repeats HoldResponse.BoundMillis, which a watcher of an
	// earlier version sent only here.
	BoundMillis int64 `json:"boundMillis,omitempty"`
	// Ports are the pod's registered ports and their kind of traffic.
	Ports []TrafficPort `json:"ports,omitempty"`
	// HealthChecks are the target groups' health checks, whose connections
	// are not traffic.
	HealthChecks []HealthCheck `json:"healthChecks,omitempty"`
}

// TrafficPort is a port the load balancer sends to.
type TrafficPort struct {
	Port int32 `json:"port"`
	// Flows is set for a network load balancer (TCP, TLS, UDP): established
	// flows go on while draining, so only a new flow is traffic. Otherwise
	// (HTTP, HTTPS, gRPC) any data received is.
	Flows bool `json:"flows,omitempty"`
}

// HealthCheck is one target group's health check of the pod.
type HealthCheck struct {
	Port int32 `json:"port"`
	// Protocol is HTTP, HTTPS or TCP.
	Protocol       string `json:"protocol,omitempty"`
	Path           string `json:"path,omitempty"`
	IntervalMillis int64  `json:"intervalMillis,omitempty"`
}

// HoldEnd is how a hold ended, as the helper saw it: its verdict, which
// the helpers of one pod pass to their leader, and, after a Handoff, the
// report the leader POSTs to HoldEndPath. It is zero for a sleep-mode hold.
type HoldEnd struct {
	// Namespace, Name and UID name the pod in a report.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
	// Outcome is the watcher's final outcome; OutcomeFallback if it could
	// not answer, OutcomeTimeout if max-hold came first, or after a
	// Handoff, OutcomeQuiet or OutcomeBound (the only ones in a report).
	Outcome Outcome `json:"outcome"`
	// HeldMillis is how long the whole hold lasted, as the helper saw it.
	HeldMillis int64 `json:"heldMillis"`
	// QuietMillis is the quiet period the helper waited for: the longest
	// of its load-balancer addresses' at the last check.
	QuietMillis int64 `json:"quietMillis"`
	// Signal is how the helper saw traffic: SignalSockDiag, SignalProcNet or SignalNone.
	Signal string `json:"signal"`
	// Quiet is whether the quiet period passed before the hold's bound
	// (after a Handoff, OutcomeQuiet says the same). Watchers read only
	// Outcome; a watcher of an earlier version ignores it.
	Quiet bool `json:"quiet,omitempty"`
}

// Held is how long the whole hold lasted.
func (e HoldEnd) Held() time.Duration { return time.Duration(e.HeldMillis) * time.Millisecond }

// QuietPeriod is the quiet period the helper waited for.
func (e HoldEnd) QuietPeriod() time.Duration {
	return time.Duration(e.QuietMillis) * time.Millisecond
}

// How the helper saw the pod's traffic.
const (
	// SignalSockDiag: NETLINK_SOCK_DIAG with tcp_info, so data received on
	// kept-alive connections counts.
	SignalSockDiag = "sock_diag"
	// SignalProcNet: /proc/net/tcp sampling, which sees only new connections.
	SignalProcNet = "procnet"
	// SignalNone: no socket table could be read; the quiet period was skipped.
	SignalNone = "none"
)

// Outcome is why a hold ended. The values are also metric label values, so
// the set is closed.
type Outcome string

const (
	// OutcomeDeregistered: the target is absent or unused in every target group.
	OutcomeDeregistered Outcome = "deregistered"
	// OutcomeDrainingSettled: the target drained for the settle time (policy "draining").
	OutcomeDrainingSettled Outcome = "draining_settled"
	// OutcomeNotRegistered: the pod was never a registered target.
	OutcomeNotRegistered Outcome = "not_registered"
	// OutcomeTimeout: the hold reached its bound before the target left service.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeFallback: the watcher could not tell (AWS errors, throttling, an
	// outage, or it was unreachable); the helper sleeps its fixed fallback.
	OutcomeFallback Outcome = "fallback"
	// OutcomeQuiet: deregistration had begun everywhere and no
	// load-balancer traffic reached the pod for its quiet period (policy
	// "quiet"); reported by the helper in a HoldEnd.
	OutcomeQuiet Outcome = "quiet"
	// OutcomeBound: deregistration had begun everywhere, but the pod's
	// traffic did not stop before the hold's bound (the deregistration
	// delay plus margin, max-hold or the grace period); reported in a HoldEnd.
	OutcomeBound Outcome = "bound"
	// OutcomeDeregistering is a Handoff on the wire (policy "quiet": every
	// target group reports the target draining, unused or absent, and the
	// helper now waits for quiet within the bound). It is not an end: the
	// helper reports the end in a HoldEnd. Only the wire form uses it.
	OutcomeDeregistering Outcome = "deregistering"
)

// OutcomeNotTerminating is the helper's, never the watcher's: the watcher
// refused the hold with 409 because the pod is not going away (a liveness
// or startup probe killed the container, which the kubelet restarts in the
// same pod, still a target in service), so the helper releases at once.
// The watcher counts the refusal, not a hold.
const OutcomeNotTerminating Outcome = "not_terminating"

// Outcomes lists every outcome that ends a hold, for initialising metrics.
var Outcomes = []Outcome{OutcomeDeregistered, OutcomeDrainingSettled, OutcomeNotRegistered, OutcomeTimeout, OutcomeFallback, OutcomeQuiet, OutcomeBound}
