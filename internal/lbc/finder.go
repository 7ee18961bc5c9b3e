package lbc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LoadBalancerKind is the kind of load balancer in front of a backend; the
// watcher and the helper apply its release semantics.
type LoadBalancerKind string

const (
	// KindALB is an Application Load Balancer: it stops routing requests to
	// a draining target, keep-alive connections included.
	KindALB LoadBalancerKind = "alb"
	// KindNLB is a Network Load Balancer: new flows stop after a lag, and
	// established flows go on while the target drains.
	KindNLB LoadBalancerKind = "nlb"
)

// Backend is one load balancer backend that a pod's Service feeds: a
// Service port whose endpoints an ip target group registers.
type Backend struct {
	// Service is the name of the Service selecting the pod.
	Service string
	// TargetPort is the Service port's targetPort: a container port number or name.
	TargetPort intstr.IntOrString
	// Kind is the load balancer's kind; empty for a TargetGroupBinding that
	// nothing else in the cluster explains (one made by hand).
	Kind LoadBalancerKind
	// TargetGroupBinding names the binding that registers the Service, when one does.
	TargetGroupBinding string
	// TargetGroupARN is the binding's target group; empty until a binding exists.
	TargetGroupARN string
	// NotReconciled says why no load balancer controller has reconciled the
	// binding (see NotReconciled), so its readiness gate may never be set;
	// empty when one has, or when there is no binding.
	NotReconciled string
	// Ingress names the ALB Ingress that routes to the Service, when one does.
	Ingress string
	// Route is the Gateway API route ("HTTPRoute name", or with its
	// namespace when not the pod's) that sends to the Service, when one does.
	Route string
	// Gateway is the route's LBC Gateway, "namespace/name".
	Gateway string
}

// Registration is one target group a pod is registered in, and the port the
// LBC registered it on: what a Backend becomes once its binding has a target
// group.
type Registration struct {
	TargetGroupARN string
	Port           int32
}

// Finder looks up a pod's load balancer backends. It lists from the cache
// through the indexes of RegisterIndexes and without deep copies, since
// admission latency matters and it only reads; nothing it returns points into
// the listed objects.
type Finder struct {
	// Reader is the manager's cached client, with the indexes registered.
	Reader client.Reader
	// Served is the set of optional APIs the apiserver serves, whose rules
	// are on; nil means none.
	Served *APISet
	// DefaultTargetType is the LBC's --default-target-type: the target type
	// of Ingresses, NLB Services and Gateway backends that name none.
	// Empty means instance, as in the LBC.
	DefaultTargetType TargetType
}

func (f *Finder) defaultTargetType() TargetType {
	if f.DefaultTargetType == "" {
		return TargetTypeInstance
	}
	return f.DefaultTargetType
}

// Match is what Find matched for a pod: its ip backends, and why it left
// the others alone.
type Match struct {
	// Backends are the ip-mode backends whose Services select the pod.
	Backends []Backend
	// Skipped says, per backend, why one that is not ip-mode was left alone.
	Skipped []string
}

// Find returns the ALB backends of a pod in namespace ns (a pod being created
// may not carry its namespace yet).
func (f *Finder) Find(ctx context.Context, ns string, pod *corev1.Pod) (Match, error) {
	var res Match
	selecting, err := f.Selecting(ctx, ns, pod)
	if err != nil {
		return res, err
	}
	if len(selecting) == 0 {
		return res, nil
	}
	if f.Served.Has(APITargetGroupBinding) {
		if err := f.fromBindings(ctx, ns, selecting, &res); err != nil {
			return res, err
		}
	}
	if err := f.fromIngresses(ctx, ns, selecting, &res); err != nil {
		return res, err
	}
	f.fromNLBServices(selecting, &res)
	if f.Served.Has(APIGateway) {
		if err := f.fromRoutes(ctx, ns, selecting, &res); err != nil {
			return res, err
		}
	}
	kindBindings(res.Backends)
	return res, nil
}

// kindBindings gives each binding's backend the load balancer kind of the
// Ingress, NLB Service or route that the LBC made it for.
func kindBindings(bs []Backend) {
	for i := range bs {
		if bs[i].TargetGroupBinding == "" {
			continue
		}
		for _, o := range bs {
			if o.TargetGroupBinding == "" && o.Service == bs[i].Service && o.TargetPort == bs[i].TargetPort {
				bs[i].Kind = o.Kind
				break
			}
		}
	}
}

// Selecting returns the Services of ns whose selector picks pod, looking only
// at those that share at least one label with it.
func (f *Finder) Selecting(ctx context.Context, ns string, pod *corev1.Pod) ([]*corev1.Service, error) {
	var out []*corev1.Service
	for k, v := range pod.Labels {
		var svcs corev1.ServiceList
		if err := f.Reader.List(ctx, &svcs, client.InNamespace(ns), client.MatchingFields{IndexSelector: k + "=" + v},
			client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		for i := range svcs.Items {
			s := &svcs.Items[i]
			if Selects(s, pod) && findService(out, s.Name) == nil {
				out = append(out, s)
			}
		}
	}
	// Map order would otherwise leak into the injected record.
	slices.SortFunc(out, func(a, b *corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (f *Finder) fromBindings(ctx context.Context, ns string, svcs []*corev1.Service, res *Match) error {
	for _, svc := range svcs {
		if err := f.bindingsOf(ctx, ns, svc, res); err != nil {
			return err
		}
	}
	return nil
}

func (f *Finder) bindingsOf(ctx context.Context, ns string, svc *corev1.Service, res *Match) error {
	var tgbs TargetGroupBindingList
	if err := f.Reader.List(ctx, &tgbs, client.InNamespace(ns), client.MatchingFields{IndexServiceRef: svc.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list targetgroupbindings: %w", err)
	}
	slices.SortFunc(tgbs.Items, func(a, b TargetGroupBinding) int { return strings.Compare(a.Name, b.Name) })
	for _, tgb := range tgbs.Items {
		tp, ok := TargetPort(svc, tgb.Spec.ServiceRef.Port)
		if !ok {
			continue
		}
		switch tt := tgb.Spec.TargetType; {
		case tt != nil && *tt == TargetTypeIP:
			res.Backends = append(res.Backends, Backend{Service: svc.Name, TargetPort: tp, TargetGroupBinding: tgb.Name,
				TargetGroupARN: tgb.Spec.TargetGroupARN, NotReconciled: NotReconciled(&tgb)})
		case tt == nil:
			res.Skipped = append(res.Skipped, fmt.Sprintf("TargetGroupBinding %s has no targetType", tgb.Name))
		default:
			res.Skipped = append(res.Skipped, fmt.Sprintf("TargetGroupBinding %s targets %s", tgb.Name, *tt))
		}
	}
	return nil
}

func (f *Finder) fromIngresses(ctx context.Context, ns string, svcs []*corev1.Service, res *Match) error {
	var ings []*networkingv1.Ingress
	for _, svc := range svcs {
		var list networkingv1.IngressList
		if err := f.Reader.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{IndexBackend: svc.Name},
			client.UnsafeDisableDeepCopy); err != nil {
			return fmt.Errorf("list ingresses: %w", err)
		}
		for i := range list.Items {
			if !slices.ContainsFunc(ings, func(have *networkingv1.Ingress) bool { return have.Name == list.Items[i].Name }) {
				ings = append(ings, &list.Items[i])
			}
		}
	}
	if len(ings) == 0 {
		return nil
	}
	slices.SortFunc(ings, func(a, b *networkingv1.Ingress) int { return strings.Compare(a.Name, b.Name) })
	classes, err := f.albClasses(ctx)
	if err != nil {
		return err
	}
	for _, ing := range ings {
		if !classes.isALB(ing) {
			continue
		}
		for _, b := range ingressBackends(ing) {
			svc := findService(svcs, b.Name)
			if svc == nil {
				continue
			}
			tp, ok := TargetPort(svc, servicePortRef(b.Port))
			if !ok {
				continue
			}
			if mode := f.ingressTargetType(ing, svc); mode != TargetTypeIP {
				res.Skipped = appendNew(res.Skipped, fmt.Sprintf("Ingress %s targets Service %s as %s", ing.Name, svc.Name, mode))
				continue
			}
			t := Backend{Service: svc.Name, TargetPort: tp, Kind: KindALB, Ingress: ing.Name}
			if !slices.Contains(res.Backends, t) {
				res.Backends = append(res.Backends, t)
			}
		}
	}
	return nil
}

// ingressTargetType follows the load balancer controller: the Service's
// annotation wins over the Ingress's, then the controller-wide default.
func (f *Finder) ingressTargetType(ing *networkingv1.Ingress, svc *corev1.Service) TargetType {
	if v, ok := svc.Annotations[TargetTypeAnnotation]; ok {
		return TargetType(v)
	}
	if v, ok := ing.Annotations[TargetTypeAnnotation]; ok {
		return TargetType(v)
	}
	return f.defaultTargetType()
}

func ingressBackends(ing *networkingv1.Ingress) []networkingv1.IngressServiceBackend {
	var out []networkingv1.IngressServiceBackend
	if b := ing.Spec.DefaultBackend; b != nil && b.Service != nil {
		out = append(out, *b.Service)
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.Backend.Service != nil {
				out = append(out, *p.Backend.Service)
			}
		}
	}
	return out
}

func servicePortRef(p networkingv1.ServiceBackendPort) intstr.IntOrString {
	if p.Name != "" {
		return intstr.FromString(p.Name)
	}
	return intstr.FromInt32(p.Number)
}

func findService(svcs []*corev1.Service, name string) *corev1.Service {
	for _, s := range svcs {
		if s.Name == name {
			return s
		}
	}
	return nil
}
