// Package albemu is a local emulator of an AWS Application Load Balancer
// (ELBv2, ip target groups) for tests and demos.
//
// It has two halves that share one state:
//
//   - A control plane speaking the AWS Query protocol (Version 2015-12-01) so
//     the unmodified AWS SDK for Go v2 can drive it: point the
//     elasticloadbalancingv2 client's BaseEndpoint at [Emulator.URL]. It
//     implements CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup,
//     DescribeTags, DescribeTargetGroupAttributes,
//     ModifyTargetGroupAttributes, RegisterTargets, DeregisterTargets and
//     DescribeTargetHealth with AWS's states, reasons and error codes. The
//     same operations exist as Go methods for test setup.
//   - A data plane: each [Listener] is a real HTTP listener that proxies to a
//     target group's targets like an ALB does, with active health checks,
//     round robin over healthy targets, fail-open when all are unhealthy,
//     propagation lag, draining with the deregistration delay, and the ALB's
//     status codes (502, 503, 504).
//
// Propagation lag is the point of the emulator: after RegisterTargets or
// DeregisterTargets the control plane answers at once, but the data plane's
// routing sets change only later. A deregistered target, already reported
// "draining", keeps receiving new requests until the lag has passed, which
// is how real pods get 502s when they stop too early.
//
// The load balancer is several nodes ([Options.Nodes], 3 by default, one per
// availability zone). Listeners spread client connections over them as DNS
// round robin spreads clients over an ALB's addresses. Each node has its
// own routing set, health checks and keep-alive connections to the targets,
// and applies every registration and deregistration after its own lag,
// drawn from a seeded [LagModel] (constant, uniform, lognormal given a
// median and a p99, or samples). The emulator records the ground truth of
// each deregistration ([Emulator.Stops], [Emulator.TargetStop]): when each
// node stopped routing new requests to the target; the latest of these is
// the target's true stop, against which a release can be judged.
// [Emulator.RoutingTargets] and [Emulator.NodeRoutingTargets] show the data
// plane's views. [Options.HealthCheckDraining] says whether draining
// targets are still health-checked, which AWS does not document.
//
// TCP target groups are served by NLB listeners ([Emulator.AddNLBListener]):
// new flows stop reaching a deregistered target after the lag, established
// flows go on while it drains, and they are closed when the delay ends only
// with deregistration_delay.connection_termination.enabled.
//
// Safety: the emulator only ever connects to loopback addresses and, when
// [Options.TargetSubnet] names one, to the test's own private subnet (a real
// node's pod bridge). Registering any other IP fails with InvalidTarget unless
// [Options.AllowNonLoopbackTargets] is set, and even then such targets are
// never contacted.
//
// Faults (throttling, a token-bucket rate limit, 5xx errors, latency, outage)
// can be changed at run time with [Emulator.SetFaults] and
// [Emulator.SetActionFaults], or over HTTP under <URL>/_emu/ (see
// [FaultsDoc]). Every API call is logged ([Emulator.Calls],
// [Emulator.CallCount]) and so is every proxied request
// ([Emulator.Requests]). [Emulator.Wait] blocks until a condition on any of
// this holds, re-checking on every change, so tests need no sleeps.
//
// Typical test use:
//
//	emu := albemu.NewForTest(t, albemu.Options{PropagationLag: 200 * time.Millisecond})
//	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{
//		Name:                "web",
//		Port:                8080,
//		Tags:                map[string]string{"elbv2.k8s.aws/cluster": "demo"},
//		DeregistrationDelay: 2 * time.Second,
//		HealthCheck:         albemu.HealthCheck{Interval: 100 * time.Millisecond, Timeout: 50 * time.Millisecond},
//	})
//	client := elasticloadbalancingv2.NewFromConfig(cfg, func(o *elasticloadbalancingv2.Options) {
//		o.BaseEndpoint = aws.String(emu.URL())
//	})
//	ln, err := emu.AddListener(arn, "") // clients use ln.URL()
//	pod := albemu.Target{ID: "127.0.0.2", Port: 8080}
//	err = emu.RegisterTargets(arn, pod)
//	err = emu.WaitTargetState(ctx, arn, pod, albemu.StateHealthy)
//	n := emu.CallCount("DescribeTargetHealth")
//
// Durations given through the Go API may be sub-second; the API reports
// them in whole seconds, rounded up. The API itself accepts only AWS's
// ranges (for example a health-check interval of 5-300 seconds).
package albemu
