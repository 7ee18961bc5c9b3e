// Package chart tests albdrain's Helm chart (charts/albdrain): lint, golden
// renderings, the values schema, and an install of the rendered manifests
// into a real kube-apiserver with the manager running under the chart's
// flags and RBAC. Run with -update to rewrite the golden files in testdata
// after an intended change. It lives in the test harness's module so that
// albdrain's own module does not require the Helm SDK.
package chart
