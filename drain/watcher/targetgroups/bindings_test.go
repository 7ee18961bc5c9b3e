package targetgroups

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
)

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

func binding(name, arn, svc string, port intstr.IntOrString, tt *lbc.TargetType) *lbc.TargetGroupBinding {
	return &lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: lbc.TargetGroupBindingSpec{
			TargetGroupARN: arn,
			TargetType:     tt,
			ServiceRef:     lbc.ServiceReference{Name: svc, Port: port},
		},
	}
}

func TestBindingsTargets(t *testing.T) {
	ip, instance := lbc.TargetTypeIP, lbc.TargetTypeInstance
	web := map[string]string{"app": "web"}
	f := lbctest.NewFinder(t,
		service("web", web,
			corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9090)},
		),
		service("web-default", web, corev1.ServicePort{Port: 7070}),
		service("other", map[string]string{"app": "other"}, corev1.ServicePort{Port: 80}),
		service("manual", nil, corev1.ServicePort{Port: 80}),
		// By Service port number, with a named target port.
		binding("web-http", "arn:tg/web-http", "web", intstr.FromInt32(80), &ip),
		// By Service port name, numeric target port.
		binding("web-metrics", "arn:tg/web-metrics", "web", intstr.FromString("metrics"), &ip),
		// Target port unset: the Service port.
		binding("web-default", "arn:tg/web-default", "web-default", intstr.FromInt32(7070), &ip),
		// Skipped: no target type (the controller's webhook always sets one), instance targets, a Service not selecting the pod, one
		// without a selector, a missing Service, a missing port.
		binding("web-untyped", "arn:tg/web-untyped", "web", intstr.FromInt32(80), nil),
		binding("web-instance", "arn:tg/web-instance", "web", intstr.FromInt32(80), &instance),
		binding("other", "arn:tg/other", "other", intstr.FromInt32(80), &ip),
		binding("manual", "arn:tg/manual", "manual", intstr.FromInt32(80), &ip),
		binding("gone", "arn:tg/gone", "gone", intstr.FromInt32(80), &ip),
		binding("no-port", "arn:tg/no-port", "web", intstr.FromInt32(81), &ip),
	)
	got, err := Bindings{Finder: f}.Registrations(context.Background(), webPod())
	if err != nil {
		t.Fatal(err)
	}
	// In the order of the Services' names, then the bindings'.
	want := []lbc.Registration{
		{TargetGroupARN: "arn:tg/web-http", Port: 8080},
		{TargetGroupARN: "arn:tg/web-metrics", Port: 9090},
		{TargetGroupARN: "arn:tg/web-default", Port: 7070},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Targets (-want +got):\n%s", diff)
	}
}

func TestBindingsOtherNamespace(t *testing.T) {
	ip := lbc.TargetTypeIP
	b := binding("web-http", "arn:tg/web-http", "web", intstr.FromInt32(80), &ip)
	b.Namespace = "elsewhere"
	f := lbctest.NewFinder(t, service("web", map[string]string{"app": "web"}, corev1.ServicePort{Port: 80}), b)
	got, err := Bindings{Finder: f}.Registrations(context.Background(), webPod())
	if err != nil || len(got) != 0 {
		t.Errorf("Targets = %v, %v; want none: bindings only bind Services of their own namespace", got, err)
	}
}

// TestBindingsNativeSidecar: a port served by a native sidecar, by name or by
// number, is registered like any other; the webhook holds such pods, so the
// watcher must find their targets too.
func TestBindingsNativeSidecar(t *testing.T) {
	ip := lbc.TargetTypeIP
	pod := webPod()
	pod.Spec.InitContainers = []corev1.Container{{
		Name:          "proxy",
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Ports:         []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001}},
	}}
	f := lbctest.NewFinder(t,
		service("web", map[string]string{"app": "web"},
			corev1.ServicePort{Name: "mesh", Port: 80, TargetPort: intstr.FromString("proxy")},
			corev1.ServicePort{Name: "mesh-num", Port: 81, TargetPort: intstr.FromInt32(15001)}),
		binding("by-name", "arn:tg/by-name", "web", intstr.FromString("mesh"), &ip),
		binding("by-number", "arn:tg/by-number", "web", intstr.FromInt32(81), &ip),
	)
	got, err := Bindings{Finder: f}.Registrations(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	want := []lbc.Registration{{TargetGroupARN: "arn:tg/by-name", Port: 15001}, {TargetGroupARN: "arn:tg/by-number", Port: 15001}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Targets (-want +got):\n%s", diff)
	}
}
