package chart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// dashboard is the Grafana dashboard's JSON, as far as this test reads it.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// dashboardQueries returns the rendered dashboard's queries of the panel
// titled title, by refId, with its variables set to match every series
// (as "All" does).
func dashboardQueries(t *testing.T, title string) map[string]string {
	t.Helper()
	m := mustRender(t, "metrics: {dashboard: {enabled: true}}")
	cm := find(t, objects(t, m), "ConfigMap", "albdrain-dashboard")
	raw, _ := cm.Object["data"].(map[string]any)["albdrain.json"].(string)
	var d dashboard
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	all := strings.NewReplacer("$cluster", ".*", "$namespace", ".*", "$job", ".*")
	for _, p := range d.Panels {
		if p.Title != title {
			continue
		}
		q := map[string]string{}
		for _, tg := range p.Targets {
			q[tg.RefID] = all.Replace(tg.Expr)
		}
		return q
	}
	t.Fatalf("the dashboard has no panel %q", title)
	return nil
}

// promqlTest is one promtool unit test of expressions over synthetic series.
type promqlTest struct {
	Interval    string           `json:"interval"`
	InputSeries []promqlSeries   `json:"input_series"`
	ExprTests   []promqlExprTest `json:"promql_expr_test"`
}

type promqlSeries struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type promqlExprTest struct {
	Expr       string         `json:"expr"`
	EvalTime   string         `json:"eval_time"`
	ExpSamples []promqlSample `json:"exp_samples"`
}

type promqlSample struct {
	Labels string  `json:"labels"`
	Value  float64 `json:"value"`
}

// TestDashboardCountsTargetGroupsOnce runs the "Target groups polled" stat's
// queries through Prometheus's own engine (`promtool test rules`) over three
// replicas: group A is polled by all three, B by r2 alone and C by r3 alone
// (r2 and r3 each poll two groups). The stat must say 3 groups, not the
// most one replica polls (2) nor the sum over replicas (5), which it shows
// beside as the polling loops; and 0, not "No data", once no hold waits.
func TestDashboardCountsTargetGroupsOnce(t *testing.T) {
	promtool := os.Getenv("ALBDRAIN_PROMTOOL")
	if promtool == "" {
		t.Fatal("ALBDRAIN_PROMTOOL is not set: `make promtool` builds promtool from the Go module proxy (make test sets it)")
	}
	q := dashboardQueries(t, "Target groups polled")
	groups, loops := q["A"], q["B"]
	if groups == "" || loops == "" {
		t.Fatalf("the panel's queries are %v, want A (target groups) and B (polling loops)", q)
	}
	// Ten minutes of polling, then no hold anywhere: the series end (a
	// gauge vector's deleted series and a gauge at zero).
	const polled, idle = "1x10 stale", "0x20"
	watched := func(pod, tg string) promqlSeries {
		return promqlSeries{Series: `albdrain_watched_target_group{cluster="c1", namespace="albdrain", job="albdrain", pod="` + pod + `", target_group="` + tg + `"}`, Values: polled}
	}
	count := func(pod, n string) promqlSeries {
		return promqlSeries{Series: `albdrain_target_groups_watched{cluster="c1", namespace="albdrain", job="albdrain", pod="` + pod + `"}`, Values: n + "x10 " + idle}
	}
	test := promqlTest{
		Interval: "1m",
		InputSeries: []promqlSeries{
			watched("r1", "A"), watched("r2", "A"), watched("r3", "A"), watched("r2", "B"), watched("r3", "C"),
			count("r1", "1"), count("r2", "2"), count("r3", "2"),
		},
		ExprTests: []promqlExprTest{
			{Expr: groups, EvalTime: "5m", ExpSamples: []promqlSample{{Labels: "{}", Value: 3}}},
			{Expr: loops, EvalTime: "5m", ExpSamples: []promqlSample{{Labels: "{}", Value: 5}}},
			{Expr: groups, EvalTime: "25m", ExpSamples: []promqlSample{{Labels: "{}", Value: 0}}},
			{Expr: loops, EvalTime: "25m", ExpSamples: []promqlSample{{Labels: "{}", Value: 0}}},
		},
	}
	out, err := yaml.Marshal(map[string]any{"evaluation_interval": "1m", "tests": []promqlTest{test}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard.test.yaml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(promtool, "test", "rules", file).CombinedOutput()
	t.Logf("promtool test rules:\n%s", res)
	if err != nil {
		t.Fatalf("promtool: %v", err)
	}
}
