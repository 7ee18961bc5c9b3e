package inject

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// TestRecordNamesEveryWayIn: the record says which Ingresses, routes,
// Gateways and load balancer kinds the hold is for, so the helper can apply
// NLB semantics and people can see why a pod is held.
func TestRecordNamesEveryWayIn(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "tcp", ContainerPort: 9000}},
	}}}}
	backends := []lbc.Backend{
		{Service: "web", TargetPort: intstr.FromString("tcp"), Kind: lbc.KindNLB, Route: "TCPRoute raw", Gateway: "shop/nlb"},
		{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, Route: "HTTPRoute shop", Gateway: "shop/alb"},
		{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, Ingress: "legacy"},
		{Service: "api", TargetPort: intstr.FromInt32(9000), Kind: lbc.KindNLB},
		// Served by no port of the pod: not recorded.
		{Service: "web", TargetPort: intstr.FromString("grpc"), Kind: lbc.KindALB, Route: "GRPCRoute rpc", Gateway: "shop/alb"},
	}
	rec, injected, err := Apply(pod, backends, testOptions())
	if err != nil || !injected {
		t.Fatalf("Apply = %v, %v", injected, err)
	}
	want := contract.Record{Mode: "wait", MaxHoldSeconds: 330, Containers: []string{"app"}, Ports: []int32{8080, 9000},
		Services: []string{"web", "api"}, Ingresses: []string{"legacy"},
		Routes: []string{"TCPRoute raw", "HTTPRoute shop"}, Gateways: []string{"shop/nlb", "shop/alb"},
		LoadBalancers: []string{"alb", "nlb"}, ShutdownBudgetSeconds: ptr.To[int64](30)}
	if d := cmp.Diff(want, rec); d != "" {
		t.Errorf("record (-want +got):\n%s", d)
	}
	if got := contract.ParseRecord(pod.Annotations); got == nil || cmp.Diff(want, *got) != "" {
		t.Errorf("annotation holds %+v, want %+v", got, want)
	}
}
