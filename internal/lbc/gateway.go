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
func (f *Finder) fromRoutes(ctx context.Context, ns string, svcs []*corev1.Service, res *Result) error {
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
			if !slices.ContainsFunc(out, func(have route) bool { return have.meta.UID == r.meta.UID && have.meta.Name == r.meta.Name }) {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b route) int {
		return strings.Compare(a.meta.Namespace+"/"+a.meta.Name, b.meta.Namespace+"/"+b.meta.Name)
	})
	return out, nil
}

func (f *Finder) routeBackends(ctx context.Context, rk routeKind, r route, ns string, svcs []*corev1.Service, res *Result) error {
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
		if r.meta.Namespace != ns {
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
	if r.meta.Namespace == podNS {
		return r.kind + " " + r.meta.Name
	}
	return r.kind + " " + r.meta.Namespace + "/" + r.meta.Name
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
		ns := r.meta.Namespace
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
		if string(class.Spec.ControllerName) == controller {
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
			return f.Group == gwv1.GroupName && string(f.Kind) == r.kind && string(f.Namespace) == r.meta.Namespace
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

// gatewayTargetType follows the LBC: the Service's TargetGroupConfiguration
// (its route override, else its default) wins over the Gateway's default
// configuration, which falls back to the controller-wide default.
func (f *Finder) gatewayTargetType(ctx context.Context, gw lbcGateway, r route, svc *corev1.Service) (TargetType, error) {
	var tgcs TargetGroupConfigurationList
	if err := f.Reader.List(ctx, &tgcs, client.InNamespace(svc.Namespace), client.MatchingFields{IndexTargetRef: svc.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return "", fmt.Errorf("list targetgroupconfigurations: %w", err)
	}
	slices.SortFunc(tgcs.Items, func(a, b TargetGroupConfiguration) int { return strings.Compare(a.Name, b.Name) })
	for i := range tgcs.Items {
		if refersToService(&tgcs.Items[i]) {
			if tt := propsFor(&tgcs.Items[i], r).TargetType; tt != nil {
				return *tt, nil
			}
			break
		}
	}
	tt, err := f.gatewayDefaultTargetType(ctx, gw, r)
	if err != nil || tt != "" {
		return tt, err
	}
	return f.defaultTargetType(), nil
}

func refersToService(tgc *TargetGroupConfiguration) bool {
	ref := tgc.Spec.TargetReference
	return ref != nil && (ref.Kind == nil || *ref.Kind == "Service")
}

// propsFor picks a configuration's properties for a route as the LBC does:
// an override for this kind, namespace and name; else the longest partial
// match (kind and namespace, then kind alone); its unset fields come from
// the default configuration.
func propsFor(tgc *TargetGroupConfiguration, r route) TargetGroupProps {
	var best *TargetGroupProps
	rank := 0
	for i, rc := range tgc.Spec.RouteConfigurations {
		id := rc.RouteIdentifier
		if id.Kind != r.kind {
			continue
		}
		switch {
		case id.Namespace == r.meta.Namespace && id.Name == r.meta.Name:
			best, rank = &tgc.Spec.RouteConfigurations[i].TargetGroupProps, 3
		case id.Name == "" && id.Namespace == r.meta.Namespace && rank < 2:
			best, rank = &tgc.Spec.RouteConfigurations[i].TargetGroupProps, 2
		case id.Name == "" && id.Namespace == "" && rank < 1:
			best, rank = &tgc.Spec.RouteConfigurations[i].TargetGroupProps, 1
		}
		if rank == 3 {
			break
		}
	}
	out := tgc.Spec.DefaultConfiguration
	if best != nil && best.TargetType != nil {
		out.TargetType = best.TargetType
	}
	return out
}

// gatewayDefaultTargetType is the target type of the default
// TargetGroupConfigurations that the Gateway's and its class's
// LoadBalancerConfigurations name, merged as the class's mergingMode says;
// empty when neither sets one.
func (f *Finder) gatewayDefaultTargetType(ctx context.Context, gw lbcGateway, r route) (TargetType, error) {
	var gwRef, classRef *client.ObjectKey
	if inf := gw.gw.Spec.Infrastructure; inf != nil && inf.ParametersRef != nil && isLBConfig(string(inf.ParametersRef.Group), string(inf.ParametersRef.Kind)) {
		gwRef = &client.ObjectKey{Namespace: gw.gw.Namespace, Name: inf.ParametersRef.Name}
	}
	if p := gw.class.Spec.ParametersRef; p != nil && p.Namespace != nil && isLBConfig(string(p.Group), string(p.Kind)) {
		classRef = &client.ObjectKey{Namespace: string(*p.Namespace), Name: p.Name}
	}
	gwConf, err := f.lbConfig(ctx, gwRef)
	if err != nil {
		return "", err
	}
	classConf, err := f.lbConfig(ctx, classRef)
	if err != nil {
		return "", err
	}
	gwTT, err := f.defaultTGCTargetType(ctx, gwConf, r)
	if err != nil {
		return "", err
	}
	classTT, err := f.defaultTGCTargetType(ctx, classConf, r)
	if err != nil {
		return "", err
	}
	high, low := classTT, gwTT
	if classConf != nil && classConf.Spec.MergingMode != nil && *classConf.Spec.MergingMode == MergePreferGateway {
		high, low = gwTT, classTT
	}
	if high != "" {
		return high, nil
	}
	return low, nil
}

func isLBConfig(group, kind string) bool {
	return group == GatewayGroupVersion.Group && kind == "LoadBalancerConfiguration"
}

func (f *Finder) lbConfig(ctx context.Context, key *client.ObjectKey) (*LoadBalancerConfiguration, error) {
	if key == nil {
		return nil, nil
	}
	var c LoadBalancerConfiguration
	if err := f.Reader.Get(ctx, *key, &c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get loadbalancerconfiguration %s: %w", key, err)
	}
	return &c, nil
}

func (f *Finder) defaultTGCTargetType(ctx context.Context, conf *LoadBalancerConfiguration, r route) (TargetType, error) {
	if conf == nil || conf.Spec.DefaultTargetGroupConfiguration == nil {
		return "", nil
	}
	var tgc TargetGroupConfiguration
	key := client.ObjectKey{Namespace: conf.Namespace, Name: conf.Spec.DefaultTargetGroupConfiguration.Name}
	if err := f.Reader.Get(ctx, key, &tgc); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("get targetgroupconfiguration %s: %w", key, err)
	}
	if tt := propsFor(&tgc, r).TargetType; tt != nil {
		return *tt, nil
	}
	return "", nil
}
