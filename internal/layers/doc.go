// Package layers has no code: its test checks the import layout of albdrain's
// packages, so that no import runs upward. From the bottom: the protocol
// (internal/contract) and what the load balancer controller does
// (internal/lbc); the in-pod helper (drain/helper/...), which may import
// nothing else of albdrain, nor Kubernetes or AWS code; the manager's parts
// (drain/watcher/..., webhook/..., certs/..., internal/...), with the
// watcher and the webhook apart; and at the top cmd/albdrain/app, which
// wires the manager and which only the manager's main imports.
package layers
