package integration

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// TestWebhookGatewayAPI starts albdrain on a cluster without the Gateway
// API, the LBC's gateway CRDs or the TargetGroupBinding CRD, then installs
// them: Gateway backends are matched once the CRDs are served, without a
// restart, and exactly the ip backends are.
func TestWebhookGatewayAPI(t *testing.T) {
	wh, err := cluster.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	env := kubetest.Start(t, kubetest.WithMutatingWebhooks(wh))
	cl := env.Client
	const ns = "shop"
	mustCreate(t, cl, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{contract.InjectKey: "enabled"}}})
	for _, app := range []string{"web", "api", "raw"} {
		mustCreate(t, cl, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}})
	}
	startManager(t, env, "--api-discovery-interval=100ms")

	dryRun := func(app string) *corev1.Pod {
		t.Helper()
		pod := restrictedPod(ns, app+"-probe")
		pod.Labels["app"] = app
		if err := cl.Create(context.Background(), pod, client.DryRunAll); err != nil {
			t.Fatalf("dry-run create: %v", err)
		}
		return pod
	}

	t.Run("CRDs absent: a pod is admitted unmutated", func(t *testing.T) {
		if pod := dryRun("web"); isMutated(pod) {
			t.Errorf("mutated without any load balancer: %v", pod.Annotations)
		}
	})

	gwCRDs, err := kubetest.GatewayAPICRDs()
	if err != nil {
		t.Fatal(err)
	}
	lbcCRDs, err := kubetest.LBCGatewayCRDs()
	if err != nil {
		t.Fatal(err)
	}
	tgbCRD, err := kubetest.TargetGroupBindingCRD()
	if err != nil {
		t.Fatal(err)
	}
	if err := kubetest.InstallCRDs(env.Config, gwCRDs...); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, cl, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "aws-alb"}, Spec: gwv1.GatewayClassSpec{ControllerName: lbc.ALBGatewayController}})
	mustCreate(t, cl, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "aws-nlb"}, Spec: gwv1.GatewayClassSpec{ControllerName: lbc.NLBGatewayController}})
	for name, class := range map[string]string{"alb": "aws-alb", "nlb": "aws-nlb"} {
		mustCreate(t, cl, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class), Listeners: []gwv1.Listener{{Name: "l", Port: 80, Protocol: gwv1.HTTPProtocolType}}}})
	}
	ref := func(svc string) gwv1.BackendRef {
		return gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(svc), Port: ptr.To(gwv1.PortNumber(80))}}
	}
	parents := gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "alb"}}}
	for _, svc := range []string{"web", "api"} {
		mustCreate(t, cl, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns}, Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: parents, Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: ref(svc)}}}}}})
	}
	mustCreate(t, cl, &gwv1.TCPRoute{ObjectMeta: metav1.ObjectMeta{Name: "raw", Namespace: ns}, Spec: gwv1.TCPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "nlb"}}},
		Rules:           []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{ref("raw")}}}}})

	t.Run("Gateway API without the LBC's gateway CRDs: rules stay off", func(t *testing.T) {
		if pod := dryRun("web"); isMutated(pod) {
			t.Errorf("mutated although the LBC's gateway controllers cannot run: %v", pod.Annotations)
		}
	})

	if err := kubetest.InstallCRDs(env.Config, lbcCRDs...); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"web", "raw"} {
		mustCreate(t, cl, &lbc.TargetGroupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns},
			Spec: lbc.TargetGroupConfigurationSpec{TargetReference: &lbc.TargetReference{Name: svc},
				DefaultConfiguration: lbc.TargetGroupProps{TargetType: ptr.To(lbc.TargetTypeIP)}}})
	}
	waitFor(t, "the Gateway rules to turn on", func() bool { return isMutated(dryRun("web")) })
	waitFor(t, "the TCPRoute rules to turn on", func() bool { return isMutated(dryRun("raw")) })

	record := func(pod *corev1.Pod) contract.Record {
		t.Helper()
		var r contract.Record
		if err := json.Unmarshal([]byte(pod.Annotations[contract.InjectedKey]), &r); err != nil {
			t.Fatalf("record %q: %v", pod.Annotations[contract.InjectedKey], err)
		}
		return r
	}
	t.Run("HTTPRoute on the ALB Gateway, ip by TargetGroupConfiguration: mutated", func(t *testing.T) {
		pod := restrictedPod(ns, "web-1")
		mustCreate(t, cl, pod)
		if !isMutated(pod) {
			t.Fatal("not mutated")
		}
		r := record(pod)
		want := contract.Record{Mode: "wait", MaxHoldSeconds: 120, Containers: []string{"app"}, Ports: []int32{8080}, Services: []string{"web"},
			Routes: []string{"HTTPRoute web"}, Gateways: []string{ns + "/alb"}, LoadBalancers: []string{"alb"}, ShutdownBudgetSeconds: ptr.To[int64](30)}
		if d := cmp.Diff(want, r); d != "" {
			t.Errorf("record (-want +got):\n%s", d)
		}
	})

	t.Run("HTTPRoute without a TargetGroupConfiguration is instance: unmutated, reason recorded", func(t *testing.T) {
		pod := restrictedPod(ns, "api-1")
		pod.Labels["app"] = "api"
		mustCreate(t, cl, pod)
		if isMutated(pod) {
			t.Fatal("instance backend mutated")
		}
		if got, want := pod.Annotations[contract.SkippedKey], "HTTPRoute api on Gateway shop/alb targets Service api as instance"; got != want {
			t.Errorf("skipped = %q, want %q", got, want)
		}
	})

	t.Run("TCPRoute on the NLB Gateway: mutated as an NLB backend", func(t *testing.T) {
		pod := restrictedPod(ns, "raw-1")
		pod.Labels["app"] = "raw"
		mustCreate(t, cl, pod)
		if !isMutated(pod) {
			t.Fatalf("not mutated: %v", pod.Annotations)
		}
		if d := cmp.Diff([]string{"nlb"}, record(pod).LoadBalancers); d != "" {
			t.Errorf("load balancers (-want +got):\n%s", d)
		}
	})

	t.Run("TargetGroupBinding CRD installed later: the binding's readiness gate is added", func(t *testing.T) {
		if err := kubetest.InstallCRDs(env.Config, tgbCRD); err != nil {
			t.Fatal(err)
		}
		tgb := &lbc.TargetGroupBinding{ObjectMeta: metav1.ObjectMeta{Name: "k8s-shop-web-1", Namespace: ns},
			Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1",
				TargetType: ptr.To(lbc.TargetTypeIP), ServiceRef: lbc.ServiceReference{Name: "web", Port: intstr.FromInt32(80)}}}
		mustCreate(t, cl, tgb)
		mustMarkReconciled(t, cl, tgb)
		waitFor(t, "the binding to be seen", func() bool { return len(dryRun("web").Spec.ReadinessGates) == 1 })
		pod := restrictedPod(ns, "web-2")
		mustCreate(t, cl, pod)
		if d := cmp.Diff([]corev1.PodReadinessGate{{ConditionType: lbc.ReadinessGatePrefix + "k8s-shop-web-1"}}, pod.Spec.ReadinessGates); d != "" {
			t.Errorf("readiness gates (-want +got):\n%s", d)
		}
	})
}
