package lbc_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/lbc"
)

// The LBC types' DeepCopy methods are generated; this checks they copy deeply: a copy that shares
// a pointer or a map with the cache's object lets a reader change the cache.
func TestDeepCopyLists(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "a", Namespace: ns, Labels: map[string]string{"k": "v"}}
	}
	tests := []struct {
		name string
		// make returns a new list, the same each call.
		make func() runtime.Object
		// change changes every part of a copy that must not be shared.
		change func(runtime.Object)
	}{
		{
			name: "TargetGroupBindingList",
			make: func() runtime.Object {
				return &lbc.TargetGroupBindingList{Items: []lbc.TargetGroupBinding{{ObjectMeta: meta(),
					Spec:   lbc.TargetGroupBindingSpec{TargetType: ptr.To(lbc.TargetTypeIP)},
					Status: lbc.TargetGroupBindingStatus{ObservedGeneration: ptr.To[int64](1)}}}}
			},
			change: func(o runtime.Object) {
				b := &o.(*lbc.TargetGroupBindingList).Items[0]
				b.Labels["k"] = "changed"
				*b.Spec.TargetType = lbc.TargetTypeInstance
				*b.Status.ObservedGeneration = 2
			},
		},
		{
			name: "TargetGroupConfigurationList",
			make: func() runtime.Object {
				return &lbc.TargetGroupConfigurationList{Items: []lbc.TargetGroupConfiguration{{ObjectMeta: meta(),
					Spec: lbc.TargetGroupConfigurationSpec{
						TargetReference:      &lbc.TargetReference{Kind: ptr.To("Service"), Name: "web"},
						DefaultConfiguration: lbc.TargetGroupProps{TargetType: ptr.To(lbc.TargetTypeIP)},
						RouteConfigurations:  []lbc.RouteConfiguration{{TargetGroupProps: lbc.TargetGroupProps{TargetType: ptr.To(lbc.TargetTypeIP)}}},
					}}}}
			},
			change: func(o runtime.Object) {
				c := &o.(*lbc.TargetGroupConfigurationList).Items[0]
				c.Labels["k"] = "changed"
				*c.Spec.TargetReference.Kind = "Pod"
				*c.Spec.DefaultConfiguration.TargetType = lbc.TargetTypeInstance
				*c.Spec.RouteConfigurations[0].TargetGroupProps.TargetType = lbc.TargetTypeInstance
			},
		},
		{
			name: "LoadBalancerConfigurationList",
			make: func() runtime.Object {
				return &lbc.LoadBalancerConfigurationList{Items: []lbc.LoadBalancerConfiguration{{ObjectMeta: meta(),
					Spec: lbc.LoadBalancerConfigurationSpec{MergingMode: ptr.To(lbc.MergePreferGateway), DefaultTargetGroupConfiguration: &lbc.LocalName{Name: "d"}}}}}
			},
			change: func(o runtime.Object) {
				c := &o.(*lbc.LoadBalancerConfigurationList).Items[0]
				c.Labels["k"] = "changed"
				*c.Spec.MergingMode = "prefer-gateway-class"
				c.Spec.DefaultTargetGroupConfiguration.Name = "changed"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.make()
			out := in.DeepCopyObject()
			if d := cmp.Diff(tc.make(), out); d != "" {
				t.Fatalf("copy differs (-want +got):\n%s", d)
			}
			tc.change(out)
			if d := cmp.Diff(tc.make(), in); d != "" {
				t.Errorf("changing the copy changed the original (-want +got):\n%s", d)
			}
		})
	}
}
