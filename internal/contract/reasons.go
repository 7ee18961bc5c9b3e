package contract

// Event reasons the watcher puts on a pod, one per step of its hold. They
// are what a person sees in kubectl describe and what tests wait for, so
// they are part of what every side agrees on.
const (
	// ReasonHoldStarted: the watcher found the pod's targets and holds it.
	ReasonHoldStarted = "HoldStarted"
	// ReasonHoldDeregistering: under policy quiet, deregistration has
	// begun everywhere and the watcher handed the hold to the helper, which
	// waits for quiet (a Handoff).
	ReasonHoldDeregistering = "HoldDeregistering"
	// ReasonHoldReleased: the hold ended with the load balancer done with
	// the pod (deregistered, draining_settled, not_registered or quiet).
	ReasonHoldReleased = "HoldReleased"
	// ReasonHoldTimedOut: the hold reached its bound first (timeout).
	ReasonHoldTimedOut = "HoldTimedOut"
	// ReasonHoldFellBack: the watcher could not tell (fallback).
	ReasonHoldFellBack = "HoldFellBack"
	// ReasonHoldBounded: the pod's traffic did not stop before the hold's
	// bound (bound).
	ReasonHoldBounded = "HoldBounded"
	// ReasonHoldNeverAsked: a managed wait-mode pod terminated without its
	// helper reaching any watcher replica (a Warning).
	ReasonHoldNeverAsked = "HoldNeverAsked"
)

// Why the watcher's hold endpoint refused a hold request or an end report,
// also the values of its refusal metric's label, so the set is closed. The
// first four say a caller is not the pod it names, which the chart alerts
// on; the rest a pod's own helper may meet.
const (
	// RefusedWrongSource: no managed pod of the name has the caller's IP
	// (or no such pod: callers are told the same).
	RefusedWrongSource = "wrong_source"
	// RefusedNoToken: the pod was given a token and the request carries none.
	RefusedNoToken = "no_token"
	// RefusedBadToken: the apiserver does not accept the token for albdrain
	// (expired, another audience, a deleted pod's, or no token at all).
	RefusedBadToken = "bad_token"
	// RefusedWrongPod: the apiserver accepts the token, but it is bound to
	// another pod or ServiceAccount.
	RefusedWrongPod = "wrong_pod"
	// RefusedReviewFailed: the TokenReview itself failed (503, retried).
	RefusedReviewFailed = "review_failed"
	// RefusedPodUnreadable: the pod could not be read (503, retried).
	RefusedPodUnreadable = "pod_unreadable"
	// RefusedWrongUID: the pod of the name is a successor of the caller's.
	RefusedWrongUID = "wrong_uid"
	// RefusedBadRequest: a malformed or too large body.
	RefusedBadRequest = "bad_request"
	// RefusedNotTerminating: a hold for a pod that is not terminating
	// (409 starting with NotTerminatingMessage: OutcomeNotTerminating).
	RefusedNotTerminating = "not_terminating"
	// RefusedPodLimit: too many requests already wait on the pod's hold (429).
	RefusedPodLimit = "pod_limit"
	// RefusedCapacity: the replica holds as many pods as it may (503).
	RefusedCapacity = "capacity"
)

// RefusalReasons lists every reason a request is refused, for initialising
// metrics.
var RefusalReasons = []string{RefusedWrongSource, RefusedNoToken, RefusedBadToken, RefusedWrongPod,
	RefusedReviewFailed, RefusedPodUnreadable, RefusedWrongUID, RefusedBadRequest, RefusedNotTerminating, RefusedPodLimit, RefusedCapacity}
