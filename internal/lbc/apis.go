package lbc

import (
	"maps"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// API is one optional API the Finder reads when the cluster serves it. The
// rules that need an API are off while it is absent.
type API string

// The optional APIs. Services, Ingresses and IngressClasses are always served.
const (
	// APITargetGroupBinding is the LBC's elbv2.k8s.aws TargetGroupBinding.
	APITargetGroupBinding API = "TargetGroupBinding"
	// APIGateway is the Gateway API's GatewayClass, Gateway and
	// ReferenceGrant together with the LBC's gateway.k8s.aws
	// TargetGroupConfiguration and LoadBalancerConfiguration: the LBC runs
	// its gateway controllers only when all of them are installed.
	APIGateway API = "Gateway"
	// The route kinds, each on top of APIGateway; a cluster may install
	// only some of them. Each value is the route's Kind, which routeKinds
	// match ReferenceGrants and listeners by.
	APIHTTPRoute API = "HTTPRoute"
	APIGRPCRoute API = "GRPCRoute"
	APITCPRoute  API = "TCPRoute"
	APITLSRoute  API = "TLSRoute"
	APIUDPRoute  API = "UDPRoute"
)

// AllAPIs lists every optional API, in the order they are enabled: the
// Gateway before its routes.
var AllAPIs = []API{APITargetGroupBinding, APIGateway, APIHTTPRoute, APIGRPCRoute, APITCPRoute, APITLSRoute, APIUDPRoute}

// kinds are the kinds that must be served, at these versions, for an API.
func (a API) kinds() []schema.GroupVersionKind {
	gw := func(kind string) schema.GroupVersionKind {
		return schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: kind}
	}
	switch a {
	case APITargetGroupBinding:
		return []schema.GroupVersionKind{GroupVersion.WithKind("TargetGroupBinding")}
	case APIGateway:
		return []schema.GroupVersionKind{gw("GatewayClass"), gw("Gateway"),
			{Group: "gateway.networking.k8s.io", Version: "v1beta1", Kind: "ReferenceGrant"},
			GatewayGroupVersion.WithKind("TargetGroupConfiguration"), GatewayGroupVersion.WithKind("LoadBalancerConfiguration")}
	default:
		return []schema.GroupVersionKind{gw(string(a))}
	}
}

// needs is the API that must be on before a.
func (a API) needs() API {
	switch a {
	case APITargetGroupBinding, APIGateway:
		return ""
	default:
		return APIGateway
	}
}

// APISet is the set of optional APIs the apiserver serves, whose rules are
// on. It grows while the manager runs, as CRDs are installed; it never
// shrinks, since an informer of a removed CRD only stops seeing changes.
type APISet struct {
	mu  sync.RWMutex
	set map[API]bool
}

// NewAPISet returns a set holding apis; tests use it for a fixed set.
func NewAPISet(apis ...API) *APISet {
	s := &APISet{}
	for _, a := range apis {
		s.add(a)
	}
	return s
}

// Has reports whether a is on. A nil set has nothing on.
func (s *APISet) Has(a API) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.set[a]
}

// List returns the APIs that are on, sorted.
func (s *APISet) List() []API {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.set))
}

func (s *APISet) add(a API) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[API]bool{}
	}
	s.set[a] = true
}
