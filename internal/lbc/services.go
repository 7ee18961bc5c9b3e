package lbc

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Names the LBC reads on Services of type LoadBalancer.
const (
	// NLBServiceClass is the loadBalancerClass of the LBC's NLB Services.
	NLBServiceClass = "service.k8s.aws/nlb"
	// LBTypeAnnotation hands a Service to the LBC ("external") or, in its
	// legacy form, asks for NLB ip targets ("nlb-ip").
	LBTypeAnnotation = "service.beta.kubernetes.io/aws-load-balancer-type"
	// NLBTargetTypeAnnotation chooses ip or instance targets of an NLB Service.
	NLBTargetTypeAnnotation = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
)

// nlbService reports whether the LBC makes an NLB for svc, as its Service
// controller decides: the LBC's class, or, without any class, the external
// type annotation with an explicit target type (or the legacy nlb-ip type).
func nlbService(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.DeletionTimestamp != nil {
		return false
	}
	if c := svc.Spec.LoadBalancerClass; c != nil {
		return *c == NLBServiceClass
	}
	switch svc.Annotations[LBTypeAnnotation] {
	case "nlb-ip":
		return true
	case "external":
		tt := svc.Annotations[NLBTargetTypeAnnotation]
		return tt == string(TargetTypeIP) || tt == string(TargetTypeInstance)
	}
	return false
}

// nlbTargetType is an LBC NLB Service's target type: the annotation, else
// the controller-wide default.
func (f *Finder) nlbTargetType(svc *corev1.Service) TargetType {
	if svc.Annotations[LBTypeAnnotation] == "nlb-ip" {
		return TargetTypeIP
	}
	if v, ok := svc.Annotations[NLBTargetTypeAnnotation]; ok {
		return TargetType(v)
	}
	return f.defaultTargetType()
}

// fromNLBServices adds the TCP ports of the selecting Services that are
// LBC NLBs with ip targets: each Service port is a listener and target group.
func (f *Finder) fromNLBServices(svcs []*corev1.Service, res *Match) {
	for _, svc := range svcs {
		if !nlbService(svc) {
			continue
		}
		if tt := f.nlbTargetType(svc); tt != TargetTypeIP {
			res.Skipped = appendNew(res.Skipped, fmt.Sprintf("NLB Service %s targets %s", svc.Name, tt))
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				res.Skipped = appendNew(res.Skipped, fmt.Sprintf("NLB Service %s port %d is %s; albdrain holds TCP backends only", svc.Name, p.Port, p.Protocol))
				continue
			}
			be := Backend{Service: svc.Name, TargetPort: TargetPortOf(p), Kind: KindNLB}
			if !slices.Contains(res.Backends, be) {
				res.Backends = append(res.Backends, be)
			}
		}
	}
}
