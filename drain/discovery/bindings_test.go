package discovery

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/albdrain/albdrain/webhook/elbv2api"
)

func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := elbv2api.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
}

func webPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app",
			Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080},
				{Name: "metrics", ContainerPort: 9090},
				{Name: "http", ContainerPort: 5353, Protocol: corev1.ProtocolUDP},
			},
		}}},
	}
}

func service(name string, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: ports},
	}
}

func binding(name, arn, svc string, port intstr.IntOrString, tt *elbv2api.TargetType) *elbv2api.TargetGroupBinding {
	return &elbv2api.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: elbv2api.TargetGroupBindingSpec{
			TargetGroupARN: arn,
			TargetType:     tt,
			ServiceRef:     elbv2api.ServiceReference{Name: svc, Port: port},
		},
	}
}

func TestBindingsTargets(t *testing.T) {
	ip, instance := elbv2api.TargetTypeIP, elbv2api.TargetTypeInstance
	web := map[string]string{"app": "web"}
	c := fakeClient(t,
		service("web", web,
			corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9090)},
		),
		service("web-default", web, corev1.ServicePort{Port: 7070}),
		service("other", map[string]string{"app": "other"}, corev1.ServicePort{Port: 80}),
		service("manual", nil, corev1.ServicePort{Port: 80}),
		// By Service port number, with a named target port.
		binding("web-http", "arn:tg/web-http", "web", intstr.FromInt32(80), &ip),
		// By Service port name, numeric target port, no target type.
		binding("web-metrics", "arn:tg/web-metrics", "web", intstr.FromString("metrics"), nil),
		// Target port unset: the Service port.
		binding("web-default", "arn:tg/web-default", "web-default", intstr.FromInt32(7070), &ip),
		// Skipped: instance targets, a Service not selecting the pod, one
		// without a selector, a missing Service, a missing port.
		binding("web-instance", "arn:tg/web-instance", "web", intstr.FromInt32(80), &instance),
		binding("other", "arn:tg/other", "other", intstr.FromInt32(80), &ip),
		binding("manual", "arn:tg/manual", "manual", intstr.FromInt32(80), &ip),
		binding("gone", "arn:tg/gone", "gone", intstr.FromInt32(80), &ip),
		binding("no-port", "arn:tg/no-port", "web", intstr.FromInt32(81), &ip),
	)
	got, err := Bindings{Client: c}.Targets(context.Background(), webPod())
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{TargetGroupARN: "arn:tg/web-default", Port: 7070},
		{TargetGroupARN: "arn:tg/web-http", Port: 8080},
		{TargetGroupARN: "arn:tg/web-metrics", Port: 9090},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Targets (-want +got):\n%s", diff)
	}
}

func TestBindingsOtherNamespace(t *testing.T) {
	ip := elbv2api.TargetTypeIP
	b := binding("web-http", "arn:tg/web-http", "web", intstr.FromInt32(80), &ip)
	b.Namespace = "elsewhere"
	c := fakeClient(t, service("web", map[string]string{"app": "web"}, corev1.ServicePort{Port: 80}), b)
	got, err := Bindings{Client: c}.Targets(context.Background(), webPod())
	if err != nil || len(got) != 0 {
		t.Errorf("Targets = %v, %v; want none: bindings only bind Services of their own namespace", got, err)
	}
}
