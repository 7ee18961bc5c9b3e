package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// promtoolTests is promtool's rule-test file, as far as this test edits it.
type promtoolTests struct {
	RuleFiles          []string       `json:"rule_files"`
	EvaluationInterval string         `json:"evaluation_interval"`
	Tests              []promtoolTest `json:"tests"`
}

type promtoolTest struct {
	Name        string            `json:"name"`
	Interval    string            `json:"interval"`
	InputSeries []map[string]any  `json:"input_series"`
	AlertTests  []promtoolAlertTC `json:"alert_rule_test"`
}

type promtoolAlertTC struct {
	EvalTime  string          `json:"eval_time"`
	AlertName string          `json:"alertname"`
	ExpAlerts []promtoolAlert `json:"exp_alerts"`
}

type promtoolAlert struct {
	ExpLabels      map[string]string `json:"exp_labels"`
	ExpAnnotations map[string]string `json:"exp_annotations,omitempty"`
}

type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// labelRef is a $labels reference in an alert's annotation template.
var labelRef = regexp.MustCompile(`\{\{ \$labels\.(\w+) \}\}`)

// TestAlertRules runs the chart's alerts through Prometheus's own rule unit
// tests (`promtool test rules`) against the synthetic series of
// testdata/alerts.test.yaml: each alert must fire in a scenario, and the
// ones rewritten for issue 22 and the new ones must also stay quiet in one.
func TestAlertRules(t *testing.T) {
	promtool := os.Getenv("ALBDRAIN_PROMTOOL")
	if promtool == "" {
		t.Fatal("ALBDRAIN_PROMTOOL is not set: `make promtool` builds promtool from the Go module proxy (make test sets it)")
	}
	m := mustRender(t, "metrics: {prometheusRule: {enabled: true}}")
	rule := find(t, objects(t, m), "PrometheusRule", "albdrain")
	spec, err := yaml.Marshal(rule.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	var groups ruleGroups
	if err := yaml.Unmarshal(spec, &groups); err != nil {
		t.Fatal(err)
	}
	annotations := map[string]map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			annotations[r.Alert] = r.Annotations
		}
	}

	raw, err := os.ReadFile("testdata/alerts.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tests promtoolTests
	if err := yaml.Unmarshal(raw, &tests); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for i := range tests.Tests {
		for j := range tests.Tests[i].AlertTests {
			tc := &tests.Tests[i].AlertTests[j]
			if len(tc.ExpAlerts) == 0 {
				quiet[tc.AlertName] = true
			}
			for k := range tc.ExpAlerts {
				fires[tc.AlertName] = true
				a := &tc.ExpAlerts[k]
				a.ExpAnnotations = map[string]string{}
				for key, v := range annotations[tc.AlertName] {
					a.ExpAnnotations[key] = labelRef.ReplaceAllStringFunc(v, func(ref string) string {
						return a.ExpLabels[labelRef.FindStringSubmatch(ref)[1]]
					})
				}
			}
		}
	}
	var untested, unquiet []string
	for name := range annotations {
		if !fires[name] {
			untested = append(untested, name)
		}
	}
	for _, name := range []string{"AlbdrainHoldsNotConfirmed", "AlbdrainHoldsBound", "AlbdrainWebhookErrors", "AlbdrainWebhookFailOpen"} {
		if !quiet[name] {
			unquiet = append(unquiet, name)
		}
	}
	slices.Sort(untested)
	if d := cmp.Diff([]string(nil), untested); d != "" {
		t.Errorf("alerts no scenario makes fire (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string(nil), unquiet); d != "" {
		t.Errorf("alerts no scenario expects quiet (-want +got):\n%s", d)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(tests)
	if err != nil {
		t.Fatal(err)
	}
	testFile := filepath.Join(dir, "alerts.test.yaml")
	if err := os.WriteFile(testFile, out, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", testFile)
	res, err := cmd.CombinedOutput()
	t.Logf("promtool test rules:\n%s", res)
	if err != nil {
		t.Fatalf("promtool: %v", err)
	}
}
