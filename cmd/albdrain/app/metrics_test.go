package app

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// TestMetricsRegister: the manager's collectors register on one registry
// without a clash, the series alerts rely on exist before any event, and a
// second set is refused rather than silently merged.
func TestMetricsRegister(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := NewMetrics().Register(reg); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{
		"albdrain_webhook_mutations_total":               2,
		"albdrain_readiness_gate_unset_pods":             1,
		"albdrain_holds_total":                           7,
		"albdrain_hold_requests_refused_total":           11,
		"albdrain_holds_in_flight":                       1,
		"albdrain_pods_terminated_unheld_total":          1,
		"albdrain_hold_ends_unreported_total":            1,
		"albdrain_target_groups_watched":                 1,
		"albdrain_webhook_readiness_gates_skipped_total": 1,
	} {
		got, err := testutil.GatherAndCount(reg, name)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: %d series, want %d", name, got, want)
		}
	}
	if err := NewMetrics().Register(reg); err == nil {
		t.Error("a second set of collectors registered beside the first")
	}
}

// TestInProcess: managers of one process share one set of collectors, the
// one controller-runtime's registry serves, and name their rotators apart.
func TestInProcess(t *testing.T) {
	p := InProcess()
	if InProcess() != p {
		t.Fatal("two Process values in one process")
	}
	before, err := testutil.GatherAndCount(ctrlmetrics.Registry, "albdrain_readiness_gate_unset_pods")
	if err != nil {
		t.Fatal(err)
	}
	if before != 1 {
		t.Errorf("controller-runtime's registry serves %d gauges of unset gates, want 1", before)
	}
	p.Metrics.Gates.Unset.Inc()
	defer p.Metrics.Gates.Unset.Dec()
	if got := testutil.ToFloat64(p.Metrics.Gates.Unset); got != 1 {
		t.Errorf("gauge = %v, want 1", got)
	}
	var lone *Process
	if got := lone.rotatorName(); got != "cert-rotator" {
		t.Errorf("a lone manager's rotator is %q, want cert-rotator", got)
	}
	if a, b := p.rotatorName(), p.rotatorName(); a == b {
		t.Errorf("two managers of one process both name their rotator %q", a)
	}
}
