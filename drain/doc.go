// Package drain is albdrain's termination path, laid out by the process each
// part runs in:
//
//   - drain/helper runs inside the pod, as the preStop hook albdrain injects
//     (cmd/albdrain-hold): it asks for a hold, watches the pod's own traffic
//     and runs the container's own preStop afterwards. Of albdrain it imports
//     only internal/contract, so it carries no Kubernetes or AWS code.
//   - drain/watcher runs in the manager (cmd/albdrain): it answers the
//     helpers' hold requests, follows each held pod's targets in ELBv2 and
//     decides when the pod may stop.
//
// The two speak the protocol of internal/contract, whose package doc follows
// one termination through both.
package drain
