package webhook

import (
	"errors"

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

// NewMetrics creates the webhook's collectors, unregistered: the manager
// registers them (package app).
func NewMetrics() *Metrics {
	m := &Metrics{
		Mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "albdrain_webhook_mutations_total",
			Help: "Pod admissions seen by the albdrain webhook, by result and reason.",
		}, []string{"result", "reason"}),
		GatesSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "albdrain_webhook_readiness_gates_skipped_total",
			Help: "Readiness gates the albdrain webhook left out of injected pods because no load balancer controller had reconciled their TargetGroupBinding.",
		}),
	}
	// The series the alerts take increase() of start at zero, or the first
	// lookup failure after a restart would create the series and be lost.
	m.Mutations.WithLabelValues(string(eligibility.ResultError), string(eligibility.ReasonLookupFailed))
	m.Mutations.WithLabelValues(string(eligibility.ResultInjected), string(eligibility.ReasonBehindALB))
	return m
}

// Register adds every collector to r.
func (m *Metrics) Register(r prometheus.Registerer) error {
	return errors.Join(r.Register(m.Mutations), r.Register(m.GatesSkipped))
}
