// Package charts holds albdrain's Helm chart (charts/albdrain) and its tests:
// lint, golden renderings, the values schema, and an install of the rendered
// manifests into a real kube-apiserver with the manager running under the
// chart's flags and RBAC. Run with -update to rewrite the golden files in
// testdata after an intended change.
package charts
