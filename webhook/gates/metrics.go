package gates

import "github.com/prometheus/client_golang/prometheus"

const unsetMetric = "albdrain_readiness_gate_unset_pods"

// Metrics is the reporter's gauge.
type Metrics struct {
	// Unset is the number of pods an injected readiness gate has kept
	// NotReady for longer than the bound.
	Unset prometheus.Gauge
}

// NewMetrics creates the reporter's gauge and registers it with reg
// (controller-runtime's metrics.Registry in the manager). Managers in one
// process share the gauge registered first, each adding its own pods.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	var g prometheus.Gauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: unsetMetric,
		Help: "Pods whose albdrain-injected readiness gate has not been True for longer than --readiness-gate-report-after since their containers became ready.",
	})
	if err := reg.Register(g); err != nil {
		are, ok := err.(prometheus.AlreadyRegisteredError)
		if !ok {
			panic(err)
		}
		g = are.ExistingCollector.(prometheus.Gauge)
	}
	return &Metrics{Unset: g}
}
