package chart

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
)

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// exportedMetrics names every albdrain metric the manager can export, read
// from the collectors themselves so a rename in the code fails this test.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	collect := func(v any) {
		rv := reflect.ValueOf(v).Elem()
		for i := range rv.NumField() {
			c, ok := rv.Field(i).Interface().(prometheus.Collector)
			if !ok {
				continue
			}
			ch := make(chan *prometheus.Desc, 8)
			go func() { c.Describe(ch); close(ch) }()
			for d := range ch {
				m := fqName.FindStringSubmatch(d.String())
				if m == nil {
					t.Fatalf("cannot read a metric name from %s", d)
				}
				names[m[1]] = true
			}
		}
	}
	m := app.NewMetrics()
	collect(m.Watcher)
	collect(m.Webhook)
	collect(m.Gates)
	if len(names) < 5 {
		t.Fatalf("found only %v: the collectors were not read", names)
	}
	return names
}

// The alerts and the dashboard must query metrics that exist, or they stay
// silent and empty.
func TestMonitoringQueriesExportedMetrics(t *testing.T) {
	known := exportedMetrics(t)
	manifest := mustRender(t, valueSets[monitoringSet(t)].values)
	used := regexp.MustCompile(`albdrain_[a-z0-9_]+`).FindAllString(manifest, -1)
	seen := map[string]bool{}
	for _, name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
				base = b
			}
		}
		if !known[base] {
			t.Errorf("%s is queried but not exported by the manager", name)
		}
		seen[base] = true
	}
	for _, kind := range []string{"kind: PrometheusRule", "kind: ConfigMap", "kind: ServiceMonitor"} {
		if !strings.Contains(manifest, kind) {
			t.Errorf("monitoring values render no %s", kind)
		}
	}
	for name := range known {
		if !seen[name] {
			t.Errorf("%s is exported but neither alerted on nor on the dashboard", name)
		}
	}
}

func monitoringSet(t *testing.T) int {
	for i, vs := range valueSets {
		if vs.name == "monitoring" {
			return i
		}
	}
	t.Fatal("no monitoring value set")
	return 0
}
