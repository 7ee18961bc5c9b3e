package shutdown

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// SliceWatch watches the EndpointSlices of the replica's Service, in its
// own namespace only (a Role grants that), from the moment the replica is
// told to stop: nothing is cached or watched while it runs, and a missing
// permission costs only the wait's bound.
type SliceWatch struct {
	// Config, HTTPClient, Scheme and Mapper are the manager's.
	Config     *rest.Config
	HTTPClient *http.Client
	Scheme     *runtime.Scheme
	Mapper     meta.RESTMapper
	// Namespace and Service name the Service; IP is the replica's address.
	Namespace, Service string
	IP                 netip.Addr
}

// NewSliceWatch returns a SliceWatch for cfg's Service and pod IP, which
// Validate has checked.
func NewSliceWatch(cfg Config, rc *rest.Config, hc *http.Client, scheme *runtime.Scheme, mapper meta.RESTMapper) *SliceWatch {
	ip, _ := netip.ParseAddr(cfg.PodIP)
	return &SliceWatch{Config: rc, HTTPClient: hc, Scheme: scheme, Mapper: mapper, Namespace: cfg.Namespace, Service: cfg.Service, IP: ip.Unmap()}
}

// WaitOut implements Endpoints: it returns once no EndpointSlice of the
// Service lists the replica's IP as a ready endpoint.
func (w *SliceWatch) WaitOut(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := cache.New(w.Config, cache.Options{
		HTTPClient:           w.HTTPClient,
		Scheme:               w.Scheme,
		Mapper:               w.Mapper,
		DefaultNamespaces:    map[string]cache.Config{w.Namespace: {}},
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: w.Service}),
	})
	if err != nil {
		return fmt.Errorf("endpoint slices cache: %w", err)
	}
	inf, err := c.GetInformer(ctx, &discoveryv1.EndpointSlice{}, cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("endpoint slices informer: %w", err)
	}
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}); err != nil {
		return fmt.Errorf("endpoint slices handler: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("endpoint slices of Service %s/%s not listed: %w", w.Namespace, w.Service, ctx.Err())
	}
	for {
		var slices discoveryv1.EndpointSliceList
		if err := c.List(ctx, &slices); err != nil {
			return err
		}
		if !Ready(slices.Items, w.IP) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("still a ready endpoint of Service %s/%s: %w", w.Namespace, w.Service, ctx.Err())
		}
	}
}

// Ready reports whether ip is a ready endpoint in slices, where clients
// (kube-proxy, the apiserver's service resolution) may still send it new
// connections. An endpoint without a ready condition counts as ready, as
// the API says; a terminating pod's endpoint is not ready.
func Ready(slices []discoveryv1.EndpointSlice, ip netip.Addr) bool {
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				if addr, err := netip.ParseAddr(a); err == nil && addr.Unmap() == ip {
					return true
				}
			}
		}
	}
	return false
}
