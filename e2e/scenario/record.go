package scenario

import (
	"context"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
)

// AlbdrainRecord is what albdrain itself recorded during a run: the
// metrics it exports and the events it put on the pods.
type AlbdrainRecord struct {
	// Holds counts the holds that ended during the run, by outcome
	// (albdrain_holds_total). The counter is the process's, so a late end
	// report of an earlier run's pod can add to it; Outcomes cannot.
	Holds map[string]float64
	// Outcomes counts the run's own pods by the outcome of their hold, from
	// the one end event of each (labelled contract.OutcomeLabel).
	Outcomes map[string]int
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
	outcomes, err := r.outcomes(ctx)
	if err != nil {
		return nil, err
	}
	// A replica counts an outcome just after it writes the end event: wait
	// until the counter has caught up with the events, for a while only, as
	// a missed count is for the caller's checks to report.
	var after metricSnapshot
	wctx, cancel := context.WithTimeout(ctx, countLag)
	defer cancel()
	err = poll(wctx, "the outcome counter to catch up with the end events", func(context.Context) (bool, error) {
		var err error
		if after, err = snapshotMetrics(); err != nil {
			return false, err
		}
		for o, n := range outcomes {
			if after.holds[o]-before.holds[o] < float64(n) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && wctx.Err() == nil {
		return nil, err
	}
	rec := &AlbdrainRecord{Holds: map[string]float64{}, Outcomes: outcomes, Events: events, Injected: after.injected - before.injected}
	for outcome, v := range after.holds {
		if d := v - before.holds[outcome]; d != 0 {
			rec.Holds[outcome] = d
		}
	}
	return rec, nil
}

// countLag bounds the wait for albdrain's counter to show the outcomes its
// events show.
const countLag = 10 * time.Second

// outcomes counts the run's pods by the outcome their end events carry.
func (r *runner) outcomes(ctx context.Context) (map[string]int, error) {
	var list eventsv1.EventList
	if err := r.c.Env.Client.List(ctx, &list, client.InNamespace(r.ns), client.HasLabels{contract.OutcomeLabel}); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, e := range list.Items {
		out[e.Labels[contract.OutcomeLabel]]++
	}
	return out, nil
}
