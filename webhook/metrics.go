package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/albdrain/albdrain/internal/eligibility"
)

// Metrics counts the webhook's decisions, by eligibility's results and
// reasons: a bounded set of label values.
type Metrics struct {
	Mutations *prometheus.CounterVec
	// GatesSkipped counts the readiness gates left out of injected pods
	// because no load balancer controller had reconciled their binding.
	GatesSkipped prometheus.Counter
}

// NewMetrics creates the webhook's metrics and registers them with reg
// (controller-runtime's metrics.Registry in the manager). A second manager in
// the same process shares the counters already registered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Mutations: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "albdrain_webhook_mutations_total",
			Help: "Pod admissions seen by the albdrain webhook, by result and reason.",
		}, []string{"result", "reason"})),
		GatesSkipped: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "albdrain_webhook_readiness_gates_skipped_total",
			Help: "Readiness gates the albdrain webhook left out of injected pods because no load balancer controller had reconciled their TargetGroupBinding.",
		})),
	}
	// The series the alerts take increase() of start at zero, or the first
	// lookup failure after a restart would create the series and be lost.
	m.Mutations.WithLabelValues(string(eligibility.ResultError), string(eligibility.ReasonLookupFailed))
	m.Mutations.WithLabelValues(string(eligibility.ResultInjected), string(eligibility.ReasonBehindALB))
	return m
}

// register registers c with reg, or returns the collector registered
// already under its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		are, ok := err.(prometheus.AlreadyRegisteredError)
		if !ok {
			panic(err)
		}
		return are.ExistingCollector.(C)
	}
	return c
}
