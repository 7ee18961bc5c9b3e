// Package contract is what the three parts of albdrain agree on: the
// admission webhook writes a pod's preStop hold, the in-pod helper runs it,
// and the watcher answers the helper's hold request. It holds the helper's
// command line, the downward-API environment, the pod label and annotation
// keys, the injection record, the hold request, answer and end report, and
// the outcomes, event reasons and refusal reasons they are told by.
// Keeping every side on one type means a field cannot be written by one
// and misread by another.
//
// It imports no Kubernetes or AWS code, since the helper, which is copied
// into every managed pod, depends on it.
//
// # A termination
//
// One pod's termination under policy "quiet", the default, across two
// binaries (albdrain-hold in the pod; albdrain, the manager, whose hold
// endpoint, holder and poller are drain/watcher's endpoint, hold and
// elbv2) and three HTTP legs: the hold (3, 15), ELBv2 (7, 9, 13) and the
// end report (17, 19).
//
//	          albdrain-hold    <------ albdrain, the manager -----> AWS
//	 kubelet     helper     endpoint     holder      poller       ELBv2
//	    |           |           |           |           |           |
//	 1  |---exec--->|           |           |           |           |
//	 2  |           |[watch]    |           |           |           |
//	 3  |           |-POST hold>|           |           |           |
//	 4  |           |           |[caller]   |           |           |
//	 5  |           |           |---Hold--->|           |           |
//	 6  |           |           |           |[bound]    |           |
//	 7  |           |           |           |------Deregister------>|
//	 8  |           |           |           |-Subscribe>|           |
//	 9  |           |           |           |           |-Describe->|
//	10  |           |           |           |           |<-draining-|
//	11  |           |           |           |<--Report--|           |
//	12  |           |           |           |[Decide]   |           |
//	13  |           |           |           |-----TG settings------>|
//	14  |           |           |<--Handoff-|           |           |
//	15  |           |<----200---|           |           |           |
//	16  |           |[quiet]    |           |           |           |
//	17  |           |-POST end->|           |           |           |
//	18  |           |           |---End---->|           |           |
//	19  |           |<----204---|           |           |           |
//	20  |           |[then]     |           |           |           |
//	21  |<--exit 0--|           |           |           |           |
//	22  |[SIGTERM]  |           |           |           |           |
//
// Step by step:
//
//  1. The pod is deleted. The kubelet runs the container's preStop,
//     albdrain-hold wait (Spec, from Command).
//  2. The helper watches the pod's sockets from now on; the helpers of the
//     pod's containers elect one to ask for all.
//  3. It POSTs a HoldRequest to HoldPath with the pod's token, over TLS
//     trusting CABundleFile. The answer comes when the watcher's part ends.
//  4. The endpoint checks the caller: its source IP, the pod's UID, its
//     token (a TokenReview), and that the pod is going away (a 409 starting
//     NotTerminatingMessage otherwise). Refusals are counted by Refused*.
//  5. Each pod has one hold per replica, which its retries join.
//  6. The holder finds the pod's target groups and ports, bounds the hold
//     (max-hold, the grace period less the budget, the deregistration delay
//     plus a margin) and records ReasonHoldStarted.
//  7. Optionally it deregisters the target at once (batched per target group).
//  8. It follows the pod's target in each of its target groups.
//  9. The poller asks DescribeTargetHealth once per target group per
//     interval, for every hold at once.
//  10. The load balancer has begun deregistering the target.
//  11. The poller reports the state to each hold that follows the target.
//  12. The release policy decides: a Handoff once the target is draining
//     or gone everywhere. Under the other policies, or on a timeout or a
//     fallback, it is a Final outcome instead, which the holder counts and
//     records (ReasonHoldReleased, ReasonHoldTimedOut, ReasonHoldFellBack);
//     the helper then still waits for quiet within the bound after some
//     (Answer.WaitsForQuiet), but reports nothing: 17 to 19 do not happen.
//  13. The target groups' protocols and health checks (cached) become the
//     hand-off's Traffic hints.
//  14. The holder records ReasonHoldDeregistering and awaits the end report
//     until the bound and a slack have passed; after that the hold counts
//     as unreported.
//  15. 200, the Answer in its wire form HoldResponse: outcome deregistering,
//     the bound and the traffic. The helper passes it to the pod's others.
//  16. Each helper waits until no load-balancer traffic has reached its
//     ports for a quiet period, or for the bound; the pod's verdict, a
//     HoldEnd, is OutcomeQuiet only if every container's was quiet.
//  17. The helper that asked POSTs the HoldEnd to HoldEndPath, best effort
//     and briefly.
//  18. The endpoint checks the caller as in 4; the holder counts the
//     outcome once per pod and records ReasonHoldReleased or
//     ReasonHoldBounded.
//  19. 204.
//  20. The helper runs the container's own preStop, Spec.Then, if any.
//  21. The hook ends.
//  22. The kubelet sends SIGTERM: the application has its budget before the
//     grace period ends.
//
// A helper that cannot reach any replica falls back to a fixed sleep and
// a quiet wait, and the watcher records ReasonHoldNeverAsked once the pod
// is gone.
package contract
