package webhook

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/webhook/webhooktest"
)

func TestIsWindows(t *testing.T) {
	osIn := func(vals ...string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: osLabel, Operator: corev1.NodeSelectorOpIn, Values: vals}}}
	}
	required := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
	tests := []struct {
		name string
		spec corev1.PodSpec
		want bool
	}{
		{name: "spec.os windows", spec: corev1.PodSpec{OS: &corev1.PodOS{Name: corev1.Windows}}, want: true},
		{name: "spec.os linux wins over a selector", spec: corev1.PodSpec{OS: &corev1.PodOS{Name: corev1.Linux}, NodeSelector: map[string]string{osLabel: "windows"}}},
		{name: "node selector", spec: corev1.PodSpec{NodeSelector: map[string]string{osLabel: "windows"}}, want: true},
		{name: "linux node selector", spec: corev1.PodSpec{NodeSelector: map[string]string{osLabel: "linux"}}},
		{name: "required affinity", spec: corev1.PodSpec{Affinity: required(osIn("windows"))}, want: true},
		{name: "every term windows", spec: corev1.PodSpec{Affinity: required(osIn("windows"), osIn("windows"))}, want: true},
		{name: "a term allowing linux", spec: corev1.PodSpec{Affinity: required(osIn("windows"), osIn("linux"))}},
		{name: "values allowing linux", spec: corev1.PodSpec{Affinity: required(osIn("windows", "linux"))}},
		{name: "NotIn windows", spec: corev1.PodSpec{Affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: osLabel, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"windows"}}}})}},
		{name: "preferred affinity only", spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: osIn("windows")}}}}}},
		{name: "nothing", spec: corev1.PodSpec{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isWindows(&tc.spec); got != tc.want {
				t.Errorf("isWindows = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHandlerSkipsUnsupportedPods: a Windows or hostNetwork pod behind an
// ip target group is admitted unmutated, with the reason recorded.
func TestHandlerSkipsUnsupportedPods(t *testing.T) {
	app := `"containers":[` + webhooktest.App("app", "") + `]`
	tests := []struct {
		name, spec, reason, why string
	}{
		{name: "windows", spec: `"os":{"name":"windows"},` + app, reason: ReasonWindows, why: "Windows pod: albdrain's helper runs on Linux only"},
		{name: "windows selector", spec: `"nodeSelector":{"kubernetes.io/os":"windows"},` + app, reason: ReasonWindows, why: "Windows pod: albdrain's helper runs on Linux only"},
		{name: "hostNetwork", spec: `"hostNetwork":true,` + app, reason: ReasonHostNetwork, why: "hostNetwork pod: its address and sockets are the node's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHandler(t)
			raw := webhooktest.Pod(`"labels":{"app":"web"}`, tc.spec)
			resp := f.handler.Handle(context.Background(), webhooktest.Request("shop", raw))
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			var out corev1.Pod
			if err := json.Unmarshal([]byte(applyPatches(t, raw, resp)), &out); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{contract.SkippedKey: tc.why}
			if d := cmp.Diff(want, out.Annotations); d != "" {
				t.Errorf("annotations (-want +got):\n%s", d)
			}
			if len(out.Spec.InitContainers) != 0 || out.Spec.Containers[0].Lifecycle != nil {
				t.Errorf("pod was mutated: %+v", out.Spec)
			}
			if got := testutil.ToFloat64(f.metrics.Mutations.WithLabelValues(ResultSkipped, tc.reason)); got != 1 {
				t.Errorf("counter skipped/%s = %v, want 1", tc.reason, got)
			}
		})
	}
}
