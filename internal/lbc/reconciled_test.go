package lbc_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/lbc"
)

func TestNotReconciled(t *testing.T) {
	tests := []struct {
		name       string
		generation int64
		observed   *int64
		want       string
	}{
		{"never reconciled", 1, nil,
			"TargetGroupBinding web was never reconciled by a load balancer controller (no status.observedGeneration)"},
		{"reconciled", 1, ptr.To[int64](1), ""},
		{"reconciled after spec changes", 4, ptr.To[int64](4), ""},
		{"spec change not yet reconciled", 3, ptr.To[int64](2),
			"TargetGroupBinding web: generation 3 not reconciled by a load balancer controller (status.observedGeneration 2)"},
		// Only the apiserver bumps the generation; a status ahead of it
		// still says a controller reconciled the binding.
		{"observed ahead of generation", 1, ptr.To[int64](2), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tgb := &lbc.TargetGroupBinding{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: tc.generation},
				Status: lbc.TargetGroupBindingStatus{ObservedGeneration: tc.observed}}
			if d := cmp.Diff(tc.want, lbc.NotReconciled(tgb)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
