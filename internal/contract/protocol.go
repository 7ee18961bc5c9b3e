package contract

import "time"

// The hold protocol between the helper and the watcher. EnvWatcherURL is the
// watcher's base URL (scheme, host and port, e.g.
// https://albdrain.albdrain-system.svc:9443); the helper POSTs a HoldRequest
// as JSON to that URL with HoldPath appended. The response arrives when the
// pod may stop.
//
// Status codes: 200 carries a HoldResponse; 503 (and 502, 504, 429) mean
// "retry, possibly against another replica"; any other status is final and
// the helper falls back to its fixed sleep.

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
}

// HoldResponse ends a hold.
type HoldResponse struct {
	Outcome Outcome `json:"outcome"`
	// Message says why, for the helper's log.
	Message string `json:"message,omitempty"`
}

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
)

// Outcomes lists every outcome, for initialising metrics.
var Outcomes = []Outcome{OutcomeDeregistered, OutcomeDrainingSettled, OutcomeNotRegistered, OutcomeTimeout, OutcomeFallback}
