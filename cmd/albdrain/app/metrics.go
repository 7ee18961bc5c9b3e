package app

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	watchermetrics "github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/webhook"
	"github.com/albdrain/albdrain/webhook/gates"
)

// Metrics are every collector the manager exports. Each package defines
// its own, unregistered; the manager registers them all on
// controller-runtime's registry, which its metrics endpoint serves.
type Metrics struct {
	Webhook *webhook.Metrics
	Gates   *gates.Metrics
	Watcher *watchermetrics.Metrics
}

// NewMetrics creates the manager's collectors, unregistered.
func NewMetrics() *Metrics {
	return &Metrics{Webhook: webhook.NewMetrics(), Gates: gates.NewMetrics(), Watcher: watchermetrics.New()}
}

// Register adds every collector to r.
func (m *Metrics) Register(r prometheus.Registerer) error {
	return errors.Join(m.Webhook.Register(r), m.Gates.Register(r), m.Watcher.Register(r))
}
