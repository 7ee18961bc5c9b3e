package lbc_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
)

func lbService(class *string, ann map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	s := service("web", ann, ports...)
	s.Spec.Type = corev1.ServiceTypeLoadBalancer
	s.Spec.LoadBalancerClass = class
	return s
}

func TestFindNLBServices(t *testing.T) {
	http := svcPort("http", 80, intstr.FromString("http"))
	dns := corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}
	ipAnn := map[string]string{lbc.NLBTargetTypeAnnotation: "ip"}
	external := func(tt string) map[string]string {
		m := map[string]string{lbc.LBTypeAnnotation: "external"}
		if tt != "" {
			m[lbc.NLBTargetTypeAnnotation] = tt
		}
		return m
	}
	nlb := func(port intstr.IntOrString) lbc.Backend {
		return lbc.Backend{Service: "web", TargetPort: port, Kind: lbc.KindNLB}
	}
	tests := []struct {
		name        string
		objs        []client.Object
		defaultType lbc.TargetType
		want        lbc.Match
	}{
		{
			name: "LBC class with ip targets",
			objs: []client.Object{lbService(ptr.To(lbc.NLBServiceClass), ipAnn, http)},
			want: lbc.Match{Backends: []lbc.Backend{nlb(intstr.FromString("http"))}},
		},
		{
			name: "external annotation with ip targets, every TCP port; UDP noted",
			objs: []client.Object{lbService(nil, external("ip"), http, svcPort("admin", 81, intstr.FromInt32(9000)), dns)},
			want: lbc.Match{
				Backends: []lbc.Backend{nlb(intstr.FromString("http")), nlb(intstr.FromInt32(9000))},
				Skipped:  []string{"NLB Service web port 53 is UDP; albdrain holds TCP backends only"},
			},
		},
		{
			name: "legacy nlb-ip type",
			objs: []client.Object{lbService(nil, map[string]string{lbc.LBTypeAnnotation: "nlb-ip"}, http)},
			want: lbc.Match{Backends: []lbc.Backend{nlb(intstr.FromString("http"))}},
		},
		{
			name: "LBC class with instance targets",
			objs: []client.Object{lbService(ptr.To(lbc.NLBServiceClass), map[string]string{lbc.NLBTargetTypeAnnotation: "instance"}, http)},
			want: lbc.Match{Skipped: []string{"NLB Service web targets instance"}},
		},
		{
			name: "LBC class without a target type is instance by default",
			objs: []client.Object{lbService(ptr.To(lbc.NLBServiceClass), nil, http)},
			want: lbc.Match{Skipped: []string{"NLB Service web targets instance"}},
		},
		{
			name:        "LBC class without a target type under a default of ip",
			objs:        []client.Object{lbService(ptr.To(lbc.NLBServiceClass), nil, http)},
			defaultType: lbc.TargetTypeIP,
			want:        lbc.Match{Backends: []lbc.Backend{nlb(intstr.FromString("http"))}},
		},
		{
			name: "external annotation without a target type is not the LBC's",
			objs: []client.Object{lbService(nil, external(""), http)},
		},
		{
			name: "another load balancer class is not the LBC's, annotations notwithstanding",
			objs: []client.Object{lbService(ptr.To("example.com/lb"), external("ip"), http)},
		},
		{
			name: "no class and no annotation: the in-tree cloud provider's",
			objs: []client.Object{lbService(nil, ipAnn, http)},
		},
		{
			name: "a ClusterIP Service with the annotations is no load balancer",
			objs: []client.Object{service("web", external("ip"), http)},
		},
		{
			name: "an NLB binding gets the NLB's kind",
			objs: []client.Object{lbService(ptr.To(lbc.NLBServiceClass), ipAnn, http),
				binding("k8s-web-abc", "web", intstr.FromInt32(80), ptr.To(lbc.TargetTypeIP))},
			want: lbc.Match{Backends: []lbc.Backend{
				{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindNLB, TargetGroupBinding: "k8s-web-abc", TargetGroupARN: arnOf("k8s-web-abc")},
				nlb(intstr.FromString("http")),
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := lbctest.NewFinder(t, tc.objs...)
			f.DefaultTargetType = tc.defaultType
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}}
			got, err := f.Find(context.Background(), ns, pod)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
