//go:build tools

// Package promtool pins the promtool command built for the alert rule tests.
package promtool

import _ "github.com/prometheus/prometheus/cmd/promtool"
