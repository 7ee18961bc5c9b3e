package gates

import "github.com/prometheus/client_golang/prometheus"

const unsetMetric = "albdrain_readiness_gate_unset_pods"

// Metrics is the reporter's gauge.
type Metrics struct {
	// Unset is the number of pods an injected readiness gate has kept
	// NotReady for longer than the bound.
	Unset prometheus.Gauge
}

// NewMetrics creates the reporter's gauge, unregistered: the manager
// registers it (package app).
func NewMetrics() *Metrics {
	return &Metrics{Unset: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: unsetMetric,
		Help: "Pods whose albdrain-injected readiness gate has not been True for longer than --readiness-gate-report-after since their containers became ready.",
	})}
}

// Register adds the gauge to r.
func (m *Metrics) Register(r prometheus.Registerer) error { return r.Register(m.Unset) }
