// Package bench measures albdrain where it costs something: the admission
// of every pod in an opted-in namespace, the hold of every terminating pod,
// the ELBv2 API budget it shares with the load balancer controller, and the
// memory of its manager on a large cluster. Each measurement runs a
// baseline in the same run and reports its figures beside it, so a ratio
// says what albdrain adds on this machine, whatever else loads it.
//
// The measurements use the real parts of the end-to-end harness: a real
// kube-apiserver and etcd, albdrain's real manager and webhook, the ALB
// emulator driven through the real AWS SDK, and albdrain's manager binary
// as a separate process for memory. Everything listens and connects on
// loopback only, and every loop is bounded in time or count.
//
// These are benchmarks, not tests: nothing here fails on a slow machine.
// Targets are reported as met or missed beside the figures.
package bench
