package lbc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

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
		case id.Namespace == r.meta.GetNamespace() && id.Name == r.meta.GetName():
			best, rank = &tgc.Spec.RouteConfigurations[i].TargetGroupProps, 3
		case id.Name == "" && id.Namespace == r.meta.GetNamespace() && rank < 2:
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
