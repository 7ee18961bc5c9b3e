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
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
)

func gatewayClass(name, controller string, params *gwv1.ParametersReference) *gwv1.GatewayClass {
	return &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: gwv1.GatewayClassSpec{ControllerName: gwv1.GatewayController(controller), ParametersRef: params}}
}

func gateway(name, class, lbConfig string) *gwv1.Gateway {
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(class), Listeners: []gwv1.Listener{{Name: "l", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}
	if lbConfig != "" {
		gw.Spec.Infrastructure = &gwv1.GatewayInfrastructure{ParametersRef: &gwv1.LocalParametersReference{
			Group: "gateway.k8s.aws", Kind: "LoadBalancerConfiguration", Name: lbConfig}}
	}
	return gw
}

func backendRef(svc string, port int32) gwv1.BackendRef {
	return gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(svc), Port: ptr.To(gwv1.PortNumber(port))}}
}

func parent(gw string) gwv1.ParentReference { return gwv1.ParentReference{Name: gwv1.ObjectName(gw)} }

func httpRoute(name, routeNS, gw string, refs ...gwv1.BackendRef) *gwv1.HTTPRoute {
	var hb []gwv1.HTTPBackendRef
	for _, r := range refs {
		hb = append(hb, gwv1.HTTPBackendRef{BackendRef: r})
	}
	return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: routeNS},
		Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent(gw)}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: hb}}}}
}

func tcpRoute(name, gw string, refs ...gwv1.BackendRef) *gwv1.TCPRoute {
	return &gwv1.TCPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gwv1.TCPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent(gw)}},
			Rules: []gwv1.TCPRouteRule{{BackendRefs: refs}}}}
}

func tgc(name string, target string, def *lbc.TargetType, routes ...lbc.RouteConfiguration) *lbc.TargetGroupConfiguration {
	c := &lbc.TargetGroupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: lbc.TargetGroupConfigurationSpec{DefaultConfiguration: lbc.TargetGroupProps{TargetType: def}, RouteConfigurations: routes}}
	if target != "" {
		c.Spec.TargetReference = &lbc.TargetReference{Name: target}
	}
	return c
}

func lbConfig(name, defaultTGC string, mode *string) *lbc.LoadBalancerConfiguration {
	return &lbc.LoadBalancerConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: lbc.LoadBalancerConfigurationSpec{MergingMode: mode, DefaultTargetGroupConfiguration: &lbc.LocalName{Name: defaultTGC}}}
}

func TestFindGatewayRoutes(t *testing.T) {
	ip, instance := ptr.To(lbc.TargetTypeIP), ptr.To(lbc.TargetTypeInstance)
	web := service("web", nil, svcPort("http", 80, intstr.FromString("http")))
	alb := gatewayClass("aws-alb", lbc.ALBGatewayController, nil)
	nlbClass := gatewayClass("aws-nlb", lbc.NLBGatewayController, nil)
	classParams := &gwv1.ParametersReference{Group: "gateway.k8s.aws", Kind: "LoadBalancerConfiguration", Name: "class-lbc", Namespace: ptr.To(gwv1.Namespace(ns))}
	albViaRoute := func(route string) lbc.Backend {
		return lbc.Backend{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, Route: route, Gateway: ns + "/gw"}
	}
	ipTGC := tgc("web-tgc", "web", ip)
	edgeGateway := gateway("gw", "aws-alb", "")
	edgeGateway.Namespace = "edge"
	// A Gateway shared from another namespace, and routes in the pods' namespace attached to it.
	shared := func(from gwv1.FromNamespaces, kinds ...gwv1.Kind) *gwv1.Gateway {
		gw := gateway("shared", "aws-alb", "")
		gw.Namespace = "infra"
		gw.Spec.Listeners[0].AllowedRoutes = &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: ptr.To(from)}}
		for _, k := range kinds {
			gw.Spec.Listeners[0].AllowedRoutes.Kinds = append(gw.Spec.Listeners[0].AllowedRoutes.Kinds, gwv1.RouteGroupKind{Kind: k})
		}
		return gw
	}
	onShared := func(section string) *gwv1.HTTPRoute {
		r := httpRoute("shop", ns, "shared", backendRef("web", 80))
		r.Spec.ParentRefs[0].Namespace = ptr.To(gwv1.Namespace("infra"))
		if section != "" {
			r.Spec.ParentRefs[0].SectionName = ptr.To(gwv1.SectionName(section))
		}
		return r
	}
	viaShared := lbc.Backend{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, Route: "HTTPRoute shop", Gateway: "infra/shared"}
	tests := []struct {
		name        string
		objs        []client.Object
		apis        []lbc.API
		defaultType lbc.TargetType
		want        lbc.Match
	}{
		{
			name: "HTTPRoute on the ALB class, Service TargetGroupConfiguration ip",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), httpRoute("shop", ns, "gw", backendRef("web", 80)), ipTGC},
			want: lbc.Match{Backends: []lbc.Backend{albViaRoute("HTTPRoute shop")}},
		},
		{
			name: "GRPCRoute on the ALB class",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), ipTGC, &gwv1.GRPCRoute{
				ObjectMeta: metav1.ObjectMeta{Name: "rpc", Namespace: ns},
				Spec: gwv1.GRPCRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("gw")}},
					Rules: []gwv1.GRPCRouteRule{{BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: backendRef("web", 80)}}}}}}},
			want: lbc.Match{Backends: []lbc.Backend{albViaRoute("GRPCRoute rpc")}},
		},
		{
			name: "GRPCRoute sending to the Service from its second rule, beside another Service",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), ipTGC, &gwv1.GRPCRoute{
				ObjectMeta: metav1.ObjectMeta{Name: "rpc", Namespace: ns},
				Spec: gwv1.GRPCRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("gw")}},
					Rules: []gwv1.GRPCRouteRule{
						{BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: backendRef("api", 80)}}},
						{BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: backendRef("api", 81)}, {BackendRef: backendRef("web", 80)}}},
					}}}},
			want: lbc.Match{Backends: []lbc.Backend{albViaRoute("GRPCRoute rpc")}},
		},
		{
			name: "TCPRoute sending to the Service from its second rule",
			objs: []client.Object{web, nlbClass, gateway("gw", "aws-nlb", ""), ipTGC, &gwv1.TCPRoute{
				ObjectMeta: metav1.ObjectMeta{Name: "tcp", Namespace: ns},
				Spec: gwv1.TCPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("gw")}},
					Rules: []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{backendRef("api", 80)}}, {BackendRefs: []gwv1.BackendRef{backendRef("web", 80)}}}}}},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindNLB, Route: "TCPRoute tcp", Gateway: ns + "/gw"}}},
		},
		{
			name: "TCPRoute on the NLB class",
			objs: []client.Object{web, nlbClass, gateway("gw", "aws-nlb", ""), tcpRoute("tcp", "gw", backendRef("web", 80)), ipTGC},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindNLB, Route: "TCPRoute tcp", Gateway: ns + "/gw"}}},
		},
		{
			name: "TLSRoute on the NLB class",
			objs: []client.Object{web, nlbClass, gateway("gw", "aws-nlb", ""), ipTGC, &gwv1.TLSRoute{
				ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: ns},
				Spec: gwv1.TLSRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("gw")}},
					Hostnames: []gwv1.Hostname{"shop.example.com"}, Rules: []gwv1.TLSRouteRule{{BackendRefs: []gwv1.BackendRef{backendRef("web", 80)}}}}}},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindNLB, Route: "TLSRoute tls", Gateway: ns + "/gw"}}},
		},
		{
			name: "UDPRoute on the NLB class is noted, not held",
			objs: []client.Object{service("dns", nil, corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP}), nlbClass, gateway("gw", "aws-nlb", ""),
				tgc("dns-tgc", "dns", ip), &gwv1.UDPRoute{ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: ns},
					Spec: gwv1.UDPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("gw")}},
						Rules: []gwv1.UDPRouteRule{{BackendRefs: []gwv1.BackendRef{backendRef("dns", 53)}}}}}},
			want: lbc.Match{Skipped: []string{"UDPRoute dns sends to Service dns port 53 over UDP; albdrain holds TCP backends only"}},
		},
		{
			name: "HTTPRoute on the NLB class is not served by the LBC",
			objs: []client.Object{web, nlbClass, gateway("gw", "aws-nlb", ""), httpRoute("shop", ns, "gw", backendRef("web", 80)), ipTGC},
		},
		{
			name: "TCPRoute on the ALB class is not served by the LBC",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), tcpRoute("tcp", "gw", backendRef("web", 80)), ipTGC},
		},
		{
			name: "another controller's Gateway",
			objs: []client.Object{web, gatewayClass("envoy", "gateway.envoyproxy.io/gatewayclass-controller", nil), gateway("gw", "envoy", ""),
				httpRoute("shop", ns, "gw", backendRef("web", 80)), ipTGC},
		},
		{
			name: "missing Gateway or class",
			objs: []client.Object{web, gateway("gw", "gone", ""), httpRoute("shop", ns, "gw", backendRef("web", 80)), httpRoute("other", ns, "nogw", backendRef("web", 80)), ipTGC},
		},
		{
			name: "no configuration: instance",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), httpRoute("shop", ns, "gw", backendRef("web", 80))},
			want: lbc.Match{Skipped: []string{"HTTPRoute shop on Gateway shop/gw targets Service web as instance"}},
		},
		{
			name:        "no configuration under a default of ip",
			objs:        []client.Object{web, alb, gateway("gw", "aws-alb", ""), httpRoute("shop", ns, "gw", backendRef("web", 80))},
			defaultType: lbc.TargetTypeIP,
			want:        lbc.Match{Backends: []lbc.Backend{albViaRoute("HTTPRoute shop")}},
		},
		{
			name: "route override to instance beats the Service default of ip",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), httpRoute("shop", ns, "gw", backendRef("web", 80)),
				tgc("web-tgc", "web", ip, lbc.RouteConfiguration{RouteIdentifier: lbc.RouteIdentifier{Kind: "HTTPRoute", Namespace: ns, Name: "shop"},
					TargetGroupProps: lbc.TargetGroupProps{TargetType: instance}})},
			want: lbc.Match{Skipped: []string{"HTTPRoute shop on Gateway shop/gw targets Service web as instance"}},
		},
		{
			name: "kind-wide override to ip over a Service default of instance; other kinds keep the default",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), httpRoute("shop", ns, "gw", backendRef("web", 80)),
				tgc("web-tgc", "web", instance, lbc.RouteConfiguration{RouteIdentifier: lbc.RouteIdentifier{Kind: "HTTPRoute"},
					TargetGroupProps: lbc.TargetGroupProps{TargetType: ip}}, lbc.RouteConfiguration{RouteIdentifier: lbc.RouteIdentifier{Kind: "GRPCRoute"},
					TargetGroupProps: lbc.TargetGroupProps{TargetType: instance}})},
			want: lbc.Match{Backends: []lbc.Backend{albViaRoute("HTTPRoute shop")}},
		},
		{
			name: "an override for another route does not apply",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), httpRoute("shop", ns, "gw", backendRef("web", 80)),
				tgc("web-tgc", "web", instance, lbc.RouteConfiguration{RouteIdentifier: lbc.RouteIdentifier{Kind: "HTTPRoute", Namespace: ns, Name: "other"},
					TargetGroupProps: lbc.TargetGroupProps{TargetType: ip}})},
			want: lbc.Match{Skipped: []string{"HTTPRoute shop on Gateway shop/gw targets Service web as instance"}},
		},
		{
			name: "Gateway's LoadBalancerConfiguration default of ip",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", "gw-lbc"), httpRoute("shop", ns, "gw", backendRef("web", 80)),
				lbConfig("gw-lbc", "defaults", nil), tgc("defaults", "", ip)},
			want: lbc.Match{Backends: []lbc.Backend{albViaRoute("HTTPRoute shop")}},
		},
		{
			name: "a Service configuration without a target type falls back to the Gateway's default",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", "gw-lbc"), httpRoute("shop", ns, "gw", backendRef("web", 80)),
				lbConfig("gw-lbc", "defaults", nil), tgc("defaults", "", ip), tgc("web-tgc", "web", nil)},
			want: lbc.Match{Backends: []lbc.Backend{albViaRoute("HTTPRoute shop")}},
		},
		{
			name: "the Service's configuration beats the Gateway's default",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", "gw-lbc"), httpRoute("shop", ns, "gw", backendRef("web", 80)),
				lbConfig("gw-lbc", "defaults", nil), tgc("defaults", "", ip), tgc("web-tgc", "web", instance)},
			want: lbc.Match{Skipped: []string{"HTTPRoute shop on Gateway shop/gw targets Service web as instance"}},
		},
		{
			name: "GatewayClass default wins over the Gateway's by default",
			objs: []client.Object{web, gatewayClass("aws-alb", lbc.ALBGatewayController, classParams), gateway("gw", "aws-alb", "gw-lbc"),
				httpRoute("shop", ns, "gw", backendRef("web", 80)),
				lbConfig("gw-lbc", "gw-defaults", nil), tgc("gw-defaults", "", ip), lbConfig("class-lbc", "class-defaults", nil), tgc("class-defaults", "", instance)},
			want: lbc.Match{Skipped: []string{"HTTPRoute shop on Gateway shop/gw targets Service web as instance"}},
		},
		{
			name: "prefer-gateway lets the Gateway's default win",
			objs: []client.Object{web, gatewayClass("aws-alb", lbc.ALBGatewayController, classParams), gateway("gw", "aws-alb", "gw-lbc"),
				httpRoute("shop", ns, "gw", backendRef("web", 80)),
				lbConfig("gw-lbc", "gw-defaults", nil), tgc("gw-defaults", "", ip), lbConfig("class-lbc", "class-defaults", ptr.To(lbc.MergePreferGateway)), tgc("class-defaults", "", instance)},
			want: lbc.Match{Backends: []lbc.Backend{albViaRoute("HTTPRoute shop")}},
		},
		{
			name: "backend port that the Service lacks, or no port",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), ipTGC, httpRoute("shop", ns, "gw", backendRef("web", 81),
				gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "web"}})},
		},
		{
			name: "route in another namespace without a ReferenceGrant",
			objs: []client.Object{web, alb, edgeGateway, ipTGC,
				httpRoute("front", "edge", "gw", gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
					Name: "web", Namespace: ptr.To(gwv1.Namespace(ns)), Port: ptr.To(gwv1.PortNumber(80))}}),
				&gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "from-edge-tcp", Namespace: ns}, Spec: gwv1beta1.ReferenceGrantSpec{
					From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "TCPRoute", Namespace: "edge"}},
					To:   []gwv1beta1.ReferenceGrantTo{{Kind: "Service"}}}}},
			want: lbc.Match{Skipped: []string{"HTTPRoute edge/front may not send to Service web: no ReferenceGrant allows it"}},
		},
		{
			name: "route in another namespace with a ReferenceGrant",
			objs: []client.Object{web, alb, ipTGC, edgeGateway,
				httpRoute("front", "edge", "gw", gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
					Name: "web", Namespace: ptr.To(gwv1.Namespace(ns)), Port: ptr.To(gwv1.PortNumber(80))}}),
				&gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "from-edge", Namespace: ns}, Spec: gwv1beta1.ReferenceGrantSpec{
					From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "edge"}},
					To:   []gwv1beta1.ReferenceGrantTo{{Kind: "Service"}}}}},
			want: lbc.Match{Backends: []lbc.Backend{{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindALB, Route: "HTTPRoute edge/front", Gateway: "edge/gw"}}},
		},
		{
			name: "shared Gateway whose listener allows routes from all namespaces",
			objs: []client.Object{web, alb, shared(gwv1.NamespacesFromAll), onShared(""), ipTGC},
			want: lbc.Match{Backends: []lbc.Backend{viaShared}},
		},
		{
			name: "a listener selecting namespaces is taken to allow the route",
			objs: []client.Object{web, alb, shared(gwv1.NamespacesFromSelector), onShared("l"), ipTGC},
			want: lbc.Match{Backends: []lbc.Backend{viaShared}},
		},
		{
			name: "shared Gateway whose listener allows its own namespace only",
			objs: []client.Object{web, alb, shared(gwv1.NamespacesFromSame), onShared(""), ipTGC},
		},
		{
			name: "listener that allows other route kinds only",
			objs: []client.Object{web, alb, shared(gwv1.NamespacesFromAll, "GRPCRoute"), onShared(""), ipTGC},
		},
		{
			name: "parent section naming no listener",
			objs: []client.Object{web, alb, shared(gwv1.NamespacesFromAll), onShared("https"), ipTGC},
		},
		{
			name: "Gateway API served but not the routes' kind: rule off",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), httpRoute("shop", ns, "gw", backendRef("web", 80)), ipTGC},
			apis: []lbc.API{lbc.APITargetGroupBinding, lbc.APIGateway, lbc.APIGRPCRoute},
		},
		{
			name: "Gateway API absent: rule off",
			objs: []client.Object{web, alb, gateway("gw", "aws-alb", ""), httpRoute("shop", ns, "gw", backendRef("web", 80)), ipTGC},
			apis: []lbc.API{lbc.APITargetGroupBinding, lbc.APIHTTPRoute},
		},
		{
			name: "the binding the LBC makes for a Gateway backend gets its kind",
			objs: []client.Object{web, nlbClass, gateway("gw", "aws-nlb", ""), tcpRoute("tcp", "gw", backendRef("web", 80)), ipTGC,
				binding("k8s-tcp-web", "web", intstr.FromInt32(80), ip)},
			want: lbc.Match{Backends: []lbc.Backend{
				{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindNLB, TargetGroupBinding: "k8s-tcp-web", TargetGroupARN: arnOf("k8s-tcp-web")},
				{Service: "web", TargetPort: intstr.FromString("http"), Kind: lbc.KindNLB, Route: "TCPRoute tcp", Gateway: ns + "/gw"},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := lbctest.NewFinder(t, tc.objs...)
			if tc.apis != nil {
				f.Served = lbc.NewAPISet(tc.apis...)
			}
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
