package lbc

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// route is what albdrain reads of any Gateway API route.
type route struct {
	// kind is the route's Kind, as ReferenceGrants, listeners and
	// TargetGroupConfigurations name it.
	kind     string
	meta     metav1.Object
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
// class, TCP, TLS and UDP on its NLB class. The kinds differ only in the
// types of their rules and backend references, so each entry names just
// where its items, parents and backends are.
var routeKinds = []routeKind{
	kindOf(APIHTTPRoute, KindALB, func(l *gwv1.HTTPRouteList) []gwv1.HTTPRoute { return l.Items },
		func(r *gwv1.HTTPRoute) ([]gwv1.ParentReference, []gwv1.BackendRef) {
			return r.Spec.ParentRefs, ruleBackends(r.Spec.Rules, func(x *gwv1.HTTPRouteRule) []gwv1.HTTPBackendRef { return x.BackendRefs },
				func(b *gwv1.HTTPBackendRef) gwv1.BackendRef { return b.BackendRef })
		}),
	kindOf(APIGRPCRoute, KindALB, func(l *gwv1.GRPCRouteList) []gwv1.GRPCRoute { return l.Items },
		func(r *gwv1.GRPCRoute) ([]gwv1.ParentReference, []gwv1.BackendRef) {
			return r.Spec.ParentRefs, ruleBackends(r.Spec.Rules, func(x *gwv1.GRPCRouteRule) []gwv1.GRPCBackendRef { return x.BackendRefs },
				func(b *gwv1.GRPCBackendRef) gwv1.BackendRef { return b.BackendRef })
		}),
	kindOf(APITCPRoute, KindNLB, func(l *gwv1.TCPRouteList) []gwv1.TCPRoute { return l.Items },
		func(r *gwv1.TCPRoute) ([]gwv1.ParentReference, []gwv1.BackendRef) {
			return r.Spec.ParentRefs, ruleBackends(r.Spec.Rules, func(x *gwv1.TCPRouteRule) []gwv1.BackendRef { return x.BackendRefs }, plain)
		}),
	kindOf(APITLSRoute, KindNLB, func(l *gwv1.TLSRouteList) []gwv1.TLSRoute { return l.Items },
		func(r *gwv1.TLSRoute) ([]gwv1.ParentReference, []gwv1.BackendRef) {
			return r.Spec.ParentRefs, ruleBackends(r.Spec.Rules, func(x *gwv1.TLSRouteRule) []gwv1.BackendRef { return x.BackendRefs }, plain)
		}),
	kindOf(APIUDPRoute, KindNLB, func(l *gwv1.UDPRouteList) []gwv1.UDPRoute { return l.Items },
		func(r *gwv1.UDPRoute) ([]gwv1.ParentReference, []gwv1.BackendRef) {
			return r.Spec.ParentRefs, ruleBackends(r.Spec.Rules, func(x *gwv1.UDPRouteRule) []gwv1.BackendRef { return x.BackendRefs }, plain)
		}),
}

// kindOf is the routeKind of route type R, listed as L. Go reads no fields
// through type parameters, so items and spec do that part; the API's name
// is the route's Kind.
func kindOf[R any, PR interface {
	*R
	client.Object
}, L any, PL interface {
	*L
	client.ObjectList
}](api API, lb LoadBalancerKind, items func(*L) []R, spec func(*R) ([]gwv1.ParentReference, []gwv1.BackendRef)) routeKind {
	read := func(r *R) route {
		parents, backends := spec(r)
		return route{kind: string(api), meta: PR(r), parents: parents, backends: backends}
	}
	return routeKind{
		api:     api,
		lb:      lb,
		obj:     PR(new(R)),
		newList: func() client.ObjectList { return PL(new(L)) },
		routes: func(l client.ObjectList) []route {
			rs := items(l.(PL))
			out := make([]route, len(rs))
			for i := range rs {
				out[i] = read(&rs[i])
			}
			return out
		},
		of: func(o client.Object) route { return read(o.(PR)) },
	}
}

// ruleBackends flattens the backend references of a route's rules; ref
// takes the BackendRef out of a kind's own reference type.
func ruleBackends[Rule, Ref any](rules []Rule, refs func(*Rule) []Ref, ref func(*Ref) gwv1.BackendRef) []gwv1.BackendRef {
	var out []gwv1.BackendRef
	for i := range rules {
		rs := refs(&rules[i])
		for j := range rs {
			out = append(out, ref(&rs[j]))
		}
	}
	return out
}

// plain is ref for the kinds whose rules hold plain BackendRefs.
func plain(b *gwv1.BackendRef) gwv1.BackendRef { return *b }

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
	ns = r.meta.GetNamespace()
	if b.Namespace != nil {
		ns = string(*b.Namespace)
	}
	return ns, string(b.Name), true
}
