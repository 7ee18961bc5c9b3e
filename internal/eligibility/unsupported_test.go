package eligibility

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
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
