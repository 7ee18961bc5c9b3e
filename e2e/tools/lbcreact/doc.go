// Package lbcreact measures how fast a load balancer controller reacts to
// EndpointSlice changes of a TargetGroupBinding's Service: from the write
// that adds a not-ready endpoint to its RegisterTargets and its readiness-gate
// condition, and from the write that marks an endpoint terminating to its
// DeregisterTargets reaching the ELBv2 emulator. It runs the real AWS Load
// Balancer Controller (a binary built from its source, which the Go module
// proxy does not serve) and the harness's stand-in, e2e/fakelbc, through
// the same steps against one real kube-apiserver, so the stand-in's
// reaction-time default can follow the real figure (fakelbc.MeasuredReal).
//
// The EndpointSlice is written by this package, not by the EndpointSlice
// controller, so the figures are the load balancer controller's own
// reaction and nothing of kube-controller-manager's.
package lbcreact
