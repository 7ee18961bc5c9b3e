package scenario

import (
	"context"
	"fmt"

	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
)

// AlbdrainRecord is what albdrain itself recorded during a run: the
// metrics it exports and the events it put on the pods.
type AlbdrainRecord struct {
	// Holds counts the holds that ended during the run, by outcome
	// (albdrain_holds_total).
	Holds map[string]float64
	// Injected counts the pods the webhook mutated during the run
	// (albdrain_webhook_mutations_total{result="injected"}).
	Injected float64
	// Events counts the events on the run's pods, by reason.
	Events map[string]int
}

// metricSnapshot is albdrain's counters at one moment.
type metricSnapshot struct {
	holds    map[string]float64
	injected float64
}

// snapshotMetrics reads albdrain's counters from the registry its manager
// serves /metrics from. Runs are sequential, so the difference between two
// snapshots belongs to the run between them.
func snapshotMetrics() (metricSnapshot, error) {
	s := metricSnapshot{holds: map[string]float64{}}
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return s, fmt.Errorf("gather metrics: %w", err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "albdrain_holds_total":
				s.holds[label(m, "outcome")] += m.GetCounter().GetValue()
			case "albdrain_webhook_mutations_total":
				if label(m, "result") == string(eligibility.ResultInjected) {
					s.injected += m.GetCounter().GetValue()
				}
			}
		}
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// albdrainRecord collects what albdrain recorded since before, once the
// watcher's events about every terminated pod have arrived: the recorder
// writes them asynchronously.
func (r *runner) albdrainRecord(ctx context.Context, before metricSnapshot, terminated int) (*AlbdrainRecord, error) {
	var events map[string]int
	err := poll(ctx, "the watcher's events on every terminated pod", func(ctx context.Context) (bool, error) {
		var err error
		events, err = r.events(ctx)
		ended := events[contract.ReasonHoldReleased] + events[contract.ReasonHoldTimedOut] + events[contract.ReasonHoldFellBack] + events[contract.ReasonHoldBounded]
		return ended >= terminated, err
	})
	if err != nil {
		return nil, err
	}
	after, err := snapshotMetrics()
	if err != nil {
		return nil, err
	}
	rec := &AlbdrainRecord{Holds: map[string]float64{}, Events: events, Injected: after.injected - before.injected}
	for outcome, v := range after.holds {
		if d := v - before.holds[outcome]; d != 0 {
			rec.Holds[outcome] = d
		}
	}
	return rec, nil
}
