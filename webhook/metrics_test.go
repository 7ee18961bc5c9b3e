package webhook

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsStartAtZero checks that the series the chart's alerts take
// increase() of exist, at zero, before the first admission: increase() of a
// series born at its first error misses that error.
func TestMetricsStartAtZero(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := NewMetrics().Register(reg); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP albdrain_webhook_mutations_total Pod admissions seen by the albdrain webhook, by result and reason.
# TYPE albdrain_webhook_mutations_total counter
albdrain_webhook_mutations_total{reason="behind_alb",result="injected"} 0
albdrain_webhook_mutations_total{reason="lookup_failed",result="error"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "albdrain_webhook_mutations_total"); err != nil {
		t.Error(err)
	}
}
