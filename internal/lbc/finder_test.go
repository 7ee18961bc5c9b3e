package lbc_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
)

const ns = "shop"

func service(name string, ann map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: ports},
	}
}

func svcPort(name string, port int32, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, TargetPort: target, Protocol: corev1.ProtocolTCP}
}

func arnOf(binding string) string {
	return "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/" + binding + "/1"
}

// binding is a TargetGroupBinding a load balancer controller has reconciled.
func binding(name, svc string, port intstr.IntOrString, tt *lbc.TargetType) *lbc.TargetGroupBinding {
	return &lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: 2},
		Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: arnOf(name),
			TargetType: tt, ServiceRef: lbc.ServiceReference{Name: svc, Port: port}},
		Status: lbc.TargetGroupBindingStatus{ObservedGeneration: ptr.To[int64](2)},
	}
}

// unreconciled is binding with its status at observed, nil for none.
func unreconciled(b *lbc.TargetGroupBinding, observed *int64) *lbc.TargetGroupBinding {
	b.Status.ObservedGeneration = observed
	return b
}

func ingress(name string, class *string, ann map[string]string, backends ...networkingv1.IngressServiceBackend) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann},
		Spec:       networkingv1.IngressSpec{IngressClassName: class},
	}
	var paths []networkingv1.HTTPIngressPath
	for _, b := range backends {
		paths = append(paths, networkingv1.HTTPIngressPath{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
			Backend: networkingv1.IngressBackend{Service: &b}})
	}
	ing.Spec.Rules = []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}}
	return ing
}

func backend(svc string, port networkingv1.ServiceBackendPort) networkingv1.IngressServiceBackend {
	return networkingv1.IngressServiceBackend{Name: svc, Port: port}
}

func ingressClass(name, controller string, isDefault bool) *networkingv1.IngressClass {
	c := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: controller}}
	if isDefault {
		c.Annotations = map[string]string{lbc.DefaultClassAnnotation: "true"}
	}
	return c
}

func TestFind(t *testing.T) {
	ip, instance := ptr.To(lbc.TargetTypeIP), ptr.To(lbc.TargetTypeInstance)
	ipAnn := map[string]string{lbc.TargetTypeAnnotation: "ip"}
	web := service("web", nil, svcPort("http", 80, intstr.FromString("http")))
	albClass := ingressClass("alb", lbc.ALBController, false)
	tests := []struct {
		name     string
		objs     []client.Object
		noTGBCRD bool
		// defaultType is the controller-wide default target type.
		defaultType lbc.TargetType
		want        lbc.Match
	}{
		{
			name: "ip binding by service port name resolves the named targetPort",
			objs: []client.Object{web, binding("tgb-web", "web", intstr.FromString("http"), ip)},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), TargetGroupBinding: "tgb-web", TargetGroupARN: arnOf("tgb-web")}}},
		},
		{
			name: "binding no controller reconciled is a backend that says so",
			objs: []client.Object{web, unreconciled(binding("tgb-web", "web", intstr.FromString("http"), ip), nil)},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), TargetGroupBinding: "tgb-web", TargetGroupARN: arnOf("tgb-web"),
				NotReconciled: "TargetGroupBinding tgb-web was never reconciled by a load balancer controller (no status.observedGeneration)"}}},
		},
		{
			name: "binding whose spec change no controller reconciled yet",
			objs: []client.Object{web, unreconciled(binding("tgb-web", "web", intstr.FromString("http"), ip), ptr.To[int64](1))},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), TargetGroupBinding: "tgb-web", TargetGroupARN: arnOf("tgb-web"),
				NotReconciled: "TargetGroupBinding tgb-web: generation 2 not reconciled by a load balancer controller (status.observedGeneration 1)"}}},
		},
		{
			name: "binding by port number, targetPort defaults to the port",
			objs: []client.Object{service("web", nil, corev1.ServicePort{Port: 8080}), binding("tgb-web", "web", intstr.FromInt32(8080), ip)},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromInt32(8080), TargetGroupBinding: "tgb-web", TargetGroupARN: arnOf("tgb-web")}}},
		},
		{
			name: "instance binding is skipped with its reason",
			objs: []client.Object{web, binding("tgb-web", "web", intstr.FromInt32(80), instance)},
			want: lbc.Match{Skipped: []string{"TargetGroupBinding tgb-web targets instance"}},
		},
		{
			name: "binding of another service or an unknown port does not match",
			objs: []client.Object{web, service("other", nil, svcPort("http", 80, intstr.FromInt32(80))),
				binding("tgb-a", "api", intstr.FromInt32(80), ip), binding("tgb-b", "web", intstr.FromInt32(81), ip)},
		},
		{
			name: "service without a selector, or selecting other pods, is ignored",
			objs: []client.Object{
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 80}}}},
				binding("tgb-web", "web", intstr.FromInt32(80), ip), binding("tgb-api", "api", intstr.FromInt32(80), ip),
			},
		},
		{
			name:     "without the CRD bindings are not consulted",
			objs:     []client.Object{web, binding("tgb-web", "web", intstr.FromString("http"), ip)},
			noTGBCRD: true,
		},
		{
			name: "ALB ingress by class name, ip on the ingress",
			objs: []client.Object{web, albClass, ingress("shop", ptr.To("alb"), ipAnn, backend("web", networkingv1.ServiceBackendPort{Number: 80}))},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, Ingress: "shop"}}},
		},
		{
			name: "ingress of another controller is ignored",
			objs: []client.Object{web, ingressClass("nginx", "k8s.io/ingress-nginx", false),
				ingress("shop", ptr.To("nginx"), ipAnn, backend("web", networkingv1.ServiceBackendPort{Number: 80}))},
		},
		{
			name: "legacy class annotation, ip on the service, backend by port name",
			objs: []client.Object{service("web", ipAnn, svcPort("http", 80, intstr.FromInt32(8080))),
				ingress("shop", nil, map[string]string{lbc.LegacyClassAnnotation: "alb"}, backend("web", networkingv1.ServiceBackendPort{Name: "http"}))},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromInt32(8080), Kind: lbc.KindALB, Ingress: "shop"}}},
		},
		{
			name: "default backend of the default ALB class",
			objs: []client.Object{web, ingressClass("alb", lbc.ALBController, true), &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Annotations: ipAnn},
				Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
			}},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, Ingress: "shop"}}},
		},
		{
			name: "ALB ingress without target-type is instance mode",
			objs: []client.Object{web, albClass, ingress("shop", ptr.To("alb"), nil, backend("web", networkingv1.ServiceBackendPort{Number: 80}))},
			want: lbc.Match{Skipped: []string{"Ingress shop targets Service web as instance"}},
		},
		{
			name:        "ALB ingress without target-type under a default of ip",
			objs:        []client.Object{web, albClass, ingress("shop", ptr.To("alb"), nil, backend("web", networkingv1.ServiceBackendPort{Number: 80}))},
			defaultType: lbc.TargetTypeIP,
			want:        lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, Ingress: "shop"}}},
		},
		{
			name: "an explicit instance annotation beats a default of ip",
			objs: []client.Object{web, albClass, ingress("shop", ptr.To("alb"), map[string]string{lbc.TargetTypeAnnotation: "instance"},
				backend("web", networkingv1.ServiceBackendPort{Number: 80}))},
			defaultType: lbc.TargetTypeIP,
			want:        lbc.Match{Skipped: []string{"Ingress shop targets Service web as instance"}},
		},
		{
			name: "service's instance annotation wins over the ingress's ip",
			objs: []client.Object{service("web", map[string]string{lbc.TargetTypeAnnotation: "instance"}, svcPort("http", 80, intstr.FromString("http"))),
				albClass, ingress("shop", ptr.To("alb"), ipAnn, backend("web", networkingv1.ServiceBackendPort{Number: 80}))},
			want: lbc.Match{Skipped: []string{"Ingress shop targets Service web as instance"}},
		},
		{
			name: "binding and ingress of the same service both recorded",
			objs: []client.Object{web, albClass, binding("tgb-web", "web", intstr.FromInt32(80), ip),
				ingress("shop", ptr.To("alb"), ipAnn, backend("web", networkingv1.ServiceBackendPort{Number: 80}), backend("web", networkingv1.ServiceBackendPort{Name: "http"}))},
			want: lbc.Match{Backends: []lbc.Backend{
				{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, TargetGroupBinding: "tgb-web", TargetGroupARN: arnOf("tgb-web")},
				{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, Ingress: "shop"},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &lbc.Finder{Reader: lbctest.IndexedFakeClient(testScheme(t), tc.objs...), Served: served(!tc.noTGBCRD), DefaultTargetType: tc.defaultType}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "pod-template-hash": "x"}}}
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

func testScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := lbc.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func served(bindings bool) *lbc.APISet {
	if bindings {
		return lbc.NewAPISet(lbc.APITargetGroupBinding)
	}
	return lbc.NewAPISet()
}
