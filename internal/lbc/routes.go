package lbc

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// route is what albdrain reads of any Gateway API route.
type route struct {
	kind     string
	meta     *metav1.ObjectMeta
	parents  []gwv1.ParentReference
	backends []gwv1.BackendRef
}

// routeKind is one Gateway API route kind and the LBC Gateway that serves it.
type routeKind struct {
	api API
	// lb is the load balancer of the GatewayClass controller that takes this kind.
	lb      LoadBalancerKind
	obj     client.Object
	newList func() client.ObjectList
	// routes returns the routes of a list; nothing it returns is copied.
	routes func(client.ObjectList) []route
	// of reads one object of this kind.
	of func(client.Object) route
}

// routeKinds are the kinds the LBC serves: HTTP and gRPC on its ALB Gateway
// class, TCP, TLS and UDP on its NLB class.
var routeKinds = []routeKind{
	{api: APIHTTPRoute, lb: KindALB, obj: &gwv1.HTTPRoute{}, newList: func() client.ObjectList { return &gwv1.HTTPRouteList{} },
		routes: func(l client.ObjectList) []route { return each(l.(*gwv1.HTTPRouteList).Items, httpRoute) }, of: func(o client.Object) route { return httpRoute(o.(*gwv1.HTTPRoute)) }},
	{api: APIGRPCRoute, lb: KindALB, obj: &gwv1.GRPCRoute{}, newList: func() client.ObjectList { return &gwv1.GRPCRouteList{} },
		routes: func(l client.ObjectList) []route { return each(l.(*gwv1.GRPCRouteList).Items, grpcRoute) }, of: func(o client.Object) route { return grpcRoute(o.(*gwv1.GRPCRoute)) }},
	{api: APITCPRoute, lb: KindNLB, obj: &gwv1.TCPRoute{}, newList: func() client.ObjectList { return &gwv1.TCPRouteList{} },
		routes: func(l client.ObjectList) []route { return each(l.(*gwv1.TCPRouteList).Items, tcpRoute) }, of: func(o client.Object) route { return tcpRoute(o.(*gwv1.TCPRoute)) }},
	{api: APITLSRoute, lb: KindNLB, obj: &gwv1.TLSRoute{}, newList: func() client.ObjectList { return &gwv1.TLSRouteList{} },
		routes: func(l client.ObjectList) []route { return each(l.(*gwv1.TLSRouteList).Items, tlsRoute) }, of: func(o client.Object) route { return tlsRoute(o.(*gwv1.TLSRoute)) }},
	{api: APIUDPRoute, lb: KindNLB, obj: &gwv1.UDPRoute{}, newList: func() client.ObjectList { return &gwv1.UDPRouteList{} },
		routes: func(l client.ObjectList) []route { return each(l.(*gwv1.UDPRouteList).Items, udpRoute) }, of: func(o client.Object) route { return udpRoute(o.(*gwv1.UDPRoute)) }},
}

func each[T any](items []T, f func(*T) route) []route {
	out := make([]route, len(items))
	for i := range items {
		out[i] = f(&items[i])
	}
	return out
}

func httpRoute(r *gwv1.HTTPRoute) route {
	out := route{kind: "HTTPRoute", meta: &r.ObjectMeta, parents: r.Spec.ParentRefs}
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			out.backends = append(out.backends, b.BackendRef)
		}
	}
	return out
}

func grpcRoute(r *gwv1.GRPCRoute) route {
	out := route{kind: "GRPCRoute", meta: &r.ObjectMeta, parents: r.Spec.ParentRefs}
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			out.backends = append(out.backends, b.BackendRef)
		}
	}
	return out
}

func tcpRoute(r *gwv1.TCPRoute) route {
	out := route{kind: "TCPRoute", meta: &r.ObjectMeta, parents: r.Spec.ParentRefs}
	for _, rule := range r.Spec.Rules {
		out.backends = append(out.backends, rule.BackendRefs...)
	}
	return out
}

func tlsRoute(r *gwv1.TLSRoute) route {
	out := route{kind: "TLSRoute", meta: &r.ObjectMeta, parents: r.Spec.ParentRefs}
	for _, rule := range r.Spec.Rules {
		out.backends = append(out.backends, rule.BackendRefs...)
	}
	return out
}

func udpRoute(r *gwv1.UDPRoute) route {
	out := route{kind: "UDPRoute", meta: &r.ObjectMeta, parents: r.Spec.ParentRefs}
	for _, rule := range r.Spec.Rules {
		out.backends = append(out.backends, rule.BackendRefs...)
	}
	return out
}

// serviceBackends returns the "namespace/name" of each Service a route sends to.
func (r route) serviceBackends() []string {
	var out []string
	for _, b := range r.backends {
		if ns, name, ok := r.serviceOf(b); ok {
			out = appendNew(out, ns+"/"+name)
		}
	}
	return out
}

// serviceOf returns the Service a backend reference names, if it names one.
func (r route) serviceOf(b gwv1.BackendRef) (ns, name string, ok bool) {
	if (b.Group != nil && *b.Group != "") || (b.Kind != nil && *b.Kind != "Service") {
		return "", "", false
	}
	ns = r.meta.Namespace
	if b.Namespace != nil {
		ns = string(*b.Namespace)
	}
	return ns, string(b.Name), true
}
