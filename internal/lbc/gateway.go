package lbc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// fromRoutes adds the backends of Gateway API routes that an LBC Gateway
// serves and that send to svcs, as the LBC's gateway controllers resolve them.
func (f *Finder) fromRoutes(ctx context.Context, ns string, svcs []*corev1.Service, res *Match) error {
	for _, rk := range routeKinds {
		if !f.Served.Has(rk.api) {
			continue
		}
		routes, err := f.routesTo(ctx, rk, ns, svcs)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if err := f.routeBackends(ctx, rk, r, ns, svcs, res); err != nil {
				return err
			}
		}
	}
	return nil
}

// routesTo lists, through the route index, the routes of any namespace
// whose backends include one of svcs.
func (f *Finder) routesTo(ctx context.Context, rk routeKind, ns string, svcs []*corev1.Service) ([]route, error) {
	var out []route
	for _, svc := range svcs {
		list := rk.newList()
		if err := f.Reader.List(ctx, list, client.MatchingFields{IndexRouteBackend: ns + "/" + svc.Name}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list %ss: %w", rk.api, err)
		}
		for _, r := range rk.routes(list) {
			if !slices.ContainsFunc(out, func(have route) bool {
				return have.meta.GetUID() == r.meta.GetUID() && have.meta.GetName() == r.meta.GetName()
			}) {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b route) int {
		return strings.Compare(a.meta.GetNamespace()+"/"+a.meta.GetName(), b.meta.GetNamespace()+"/"+b.meta.GetName())
	})
	return out, nil
}

func (f *Finder) routeBackends(ctx context.Context, rk routeKind, r route, ns string, svcs []*corev1.Service, res *Match) error {
	gws, err := f.lbcGateways(ctx, rk, r)
	if err != nil || len(gws) == 0 {
		return err
	}
	name := routeName(r, ns)
	for _, b := range r.backends {
		bns, bname, ok := r.serviceOf(b)
		svc := findService(svcs, bname)
		if !ok || bns != ns || svc == nil {
			continue
		}
		if r.meta.GetNamespace() != ns {
			granted, err := f.granted(ctx, r, ns, bname)
			if err != nil {
				return err
			}
			if !granted {
				res.Skipped = appendNew(res.Skipped, fmt.Sprintf("%s may not send to Service %s: no ReferenceGrant allows it", name, bname))
				continue
			}
		}
		port, ok := gatewayServicePort(svc, b)
		if !ok {
			continue
		}
		if port.Protocol == corev1.ProtocolUDP || port.Protocol == corev1.ProtocolSCTP {
			res.Skipped = appendNew(res.Skipped, fmt.Sprintf("%s sends to Service %s port %d over %s; albdrain holds TCP backends only", name, bname, port.Port, port.Protocol))
			continue
		}
		for _, gw := range gws {
			tt, err := f.gatewayTargetType(ctx, gw, r, svc)
			if err != nil {
				return err
			}
			if tt != TargetTypeIP {
				res.Skipped = appendNew(res.Skipped, fmt.Sprintf("%s on Gateway %s targets Service %s as %s", name, gw.key(), bname, tt))
				continue
			}
			be := Backend{Service: bname, TargetPort: TargetPortOf(port), Kind: rk.lb, Route: name, Gateway: gw.key()}
			if !slices.Contains(res.Backends, be) {
				res.Backends = append(res.Backends, be)
			}
		}
	}
	return nil
}

// gatewayServicePort is the Service port a route backend names: the LBC
// requires a port number and takes the first Service port of that number.
func gatewayServicePort(svc *corev1.Service, b gwv1.BackendRef) (corev1.ServicePort, bool) {
	if b.Port == nil {
		return corev1.ServicePort{}, false
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == *b.Port {
			return p, true
		}
	}
	return corev1.ServicePort{}, false
}

func routeName(r route, podNS string) string {
	if r.meta.GetNamespace() == podNS {
		return r.kind + " " + r.meta.GetName()
	}
	return r.kind + " " + r.meta.GetNamespace() + "/" + r.meta.GetName()
}

// lbcGateway is a Gateway of the LBC's and its class.
type lbcGateway struct {
	gw    *gwv1.Gateway
	class *gwv1.GatewayClass
}

func (g lbcGateway) key() string { return g.gw.Namespace + "/" + g.gw.Name }

// lbcGateways returns the route's parent Gateways whose class the LBC
// controls with the load balancer kind that takes this route kind.
func (f *Finder) lbcGateways(ctx context.Context, rk routeKind, r route) ([]lbcGateway, error) {
	controller := ALBGatewayController
	if rk.lb == KindNLB {
		controller = NLBGatewayController
	}
	var out []lbcGateway
	for _, p := range r.parents {
		if (p.Group != nil && *p.Group != gwv1.GroupName) || (p.Kind != nil && *p.Kind != "Gateway") {
			continue
		}
		ns := r.meta.GetNamespace()
		if p.Namespace != nil {
			ns = string(*p.Namespace)
		}
		var gw gwv1.Gateway
		if err := f.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: string(p.Name)}, &gw); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("get gateway %s/%s: %w", ns, p.Name, err)
		}
		if slices.ContainsFunc(out, func(have lbcGateway) bool { return have.key() == ns+"/"+gw.Name }) {
			continue
		}
		var class gwv1.GatewayClass
		if err := f.Reader.Get(ctx, client.ObjectKey{Name: string(gw.Spec.GatewayClassName)}, &class); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("get gatewayclass %s: %w", gw.Spec.GatewayClassName, err)
		}
		if string(class.Spec.ControllerName) == controller && attaches(&gw, p, r) {
			out = append(out, lbcGateway{gw: &gw, class: &class})
		}
	}
	return out, nil
}

// granted reports whether a ReferenceGrant in the Service's namespace lets
// the route send to it.
func (f *Finder) granted(ctx context.Context, r route, ns, svc string) (bool, error) {
	var grants gwv1beta1.ReferenceGrantList
	if err := f.Reader.List(ctx, &grants, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("list referencegrants: %w", err)
	}
	for _, g := range grants.Items {
		from := slices.ContainsFunc(g.Spec.From, func(f gwv1beta1.ReferenceGrantFrom) bool {
			return f.Group == gwv1.GroupName && string(f.Kind) == r.kind && string(f.Namespace) == r.meta.GetNamespace()
		})
		to := slices.ContainsFunc(g.Spec.To, func(t gwv1beta1.ReferenceGrantTo) bool {
			return t.Group == "" && t.Kind == "Service" && (t.Name == nil || string(*t.Name) == svc)
		})
		if from && to {
			return true, nil
		}
	}
	return false, nil
}

// attaches reports whether a listener of gw that the parent reference names
// accepts the route: by its namespace (Same by default) and, where the
// listener lists them, its kind. A namespace selector is taken to match:
// reading namespaces would need more rights, and a hold too many ends at
// once as not registered.
func attaches(gw *gwv1.Gateway, p gwv1.ParentReference, r route) bool {
	return slices.ContainsFunc(gw.Spec.Listeners, func(l gwv1.Listener) bool {
		if (p.SectionName != nil && *p.SectionName != l.Name) || (p.Port != nil && *p.Port != l.Port) {
			return false
		}
		from := gwv1.NamespacesFromSame
		var kinds []gwv1.RouteGroupKind
		if a := l.AllowedRoutes; a != nil {
			kinds = a.Kinds
			if a.Namespaces != nil && a.Namespaces.From != nil {
				from = *a.Namespaces.From
			}
		}
		switch from {
		case gwv1.NamespacesFromSame:
			if r.meta.GetNamespace() != gw.Namespace {
				return false
			}
		case gwv1.NamespacesFromNone:
			return false
		}
		return len(kinds) == 0 || slices.ContainsFunc(kinds, func(k gwv1.RouteGroupKind) bool {
			return string(k.Kind) == r.kind && (k.Group == nil || *k.Group == gwv1.GroupName)
		})
	})
}
