package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/internal/shutdown"
)

// Stand-ins for albdrain's Service when its replicas stop as pods do
// (ReplicaOptions.Endpoints): the manager runs in this process, and the
// apiserver refuses loopback addresses in EndpointSlices, so no real
// Service can route to it. The harness writes the Service's EndpointSlice
// itself, as the EndpointSlice controller would, with an address from
// TEST-NET-1 (192.0.2.0/24, never routed) naming each replica: data only,
// never dialled. kubeProxy maps those addresses to the replicas' loopback
// listeners and steers the webhook and hold proxies by the slice, as
// kube-proxy would; the webhook configuration points at the webhook proxy.

// sliceName is the harness's EndpointSlice of albdrain's Service.
const sliceName = helmchart.ReleaseName + "-e2e"

// ServiceLag is how long kubeProxy takes to apply a change of the slice,
// as kube-proxy (and the apiserver's own endpoint cache) lag the
// EndpointSlice controller.
const ServiceLag = 500 * time.Millisecond

// replicaIP is replica i's address in the slice.
func replicaIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}) }

// serviceSlice writes albdrain's EndpointSlice as the EndpointSlice
// controller would for the replicas' pods.
type serviceSlice struct {
	c  client.Client
	mu sync.Mutex
	// endpoints are the replicas', by index; a removed one has no addresses.
	endpoints []discoveryv1.Endpoint
}

func newServiceSlice(ctx context.Context, c client.Client, n int) (*serviceSlice, error) {
	s := &serviceSlice{c: c}
	for i := range n {
		s.endpoints = append(s.endpoints, discoveryv1.Endpoint{
			Addresses:  []string{replicaIP(i).String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		})
	}
	return s, s.write(ctx, true)
}

// terminating marks replica i's endpoint as its pod's deletion does.
func (s *serviceSlice) terminating(ctx context.Context, i int) error {
	s.mu.Lock()
	s.endpoints[i].Conditions = discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
	s.mu.Unlock()
	return s.write(ctx, false)
}

// remove takes replica i's endpoint out, as its pod's removal does.
func (s *serviceSlice) remove(ctx context.Context, i int) error {
	s.mu.Lock()
	s.endpoints[i].Addresses = nil
	s.mu.Unlock()
	return s.write(ctx, false)
}

func (s *serviceSlice) write(ctx context.Context, create bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: sliceName, Namespace: Namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: helmchart.ReleaseName,
			discoveryv1.LabelManagedBy:   "e2e.albdrain.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("webhook"), Port: ptr.To[int32](9443), Protocol: ptr.To(corev1.ProtocolTCP)},
			{Name: ptr.To("hold"), Port: ptr.To[int32](8443), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
	}
	for _, e := range s.endpoints {
		if len(e.Addresses) > 0 {
			slice.Endpoints = append(slice.Endpoints, *e.DeepCopy())
		}
	}
	if create {
		return s.c.Create(ctx, slice)
	}
	var current discoveryv1.EndpointSlice
	if err := s.c.Get(ctx, client.ObjectKeyFromObject(slice), &current); err != nil {
		return err
	}
	slice.ResourceVersion = current.ResourceVersion
	return s.c.Update(ctx, slice)
}

func (s *serviceSlice) delete(ctx context.Context) error {
	err := s.c.Delete(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: sliceName, Namespace: Namespace}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// kubeProxy steers the webhook and hold proxies to the replicas that
// albdrain's EndpointSlices list as ready, ServiceLag after each change.
type kubeProxy struct {
	webhook, hold *Proxy
	// webhookAddrs and holdAddrs are replica i's listeners.
	webhookAddrs, holdAddrs []string

	mu      sync.Mutex
	seq     int
	applied int
}

// follow applies the slices now, then watches them until ctx ends.
func (k *kubeProxy) follow(ctx context.Context, c client.WithWatch) error {
	slices, err := k.list(ctx, c, 0)
	if err != nil {
		return err
	}
	go func() {
		for ctx.Err() == nil {
			if err := k.watch(ctx, c, slices); err != nil && ctx.Err() == nil {
				log.FromContext(ctx).Info("EndpointSlice watch ended; listing again", "err", err)
			}
			if slices, err = k.list(ctx, c, ServiceLag); err != nil && ctx.Err() == nil {
				log.FromContext(ctx).Info("EndpointSlice list failed", "err", err)
				time.Sleep(ServiceLag) // before listing again
			}
		}
	}()
	return nil
}

func (k *kubeProxy) list(ctx context.Context, c client.WithWatch, lag time.Duration) (*discoveryv1.EndpointSliceList, error) {
	var slices discoveryv1.EndpointSliceList
	if err := c.List(ctx, &slices, client.InNamespace(Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: helmchart.ReleaseName}); err != nil {
		return &slices, err
	}
	k.apply(slices.Items, lag)
	return &slices, nil
}

// watch follows the changes to slices, as listed, until the watch ends.
func (k *kubeProxy) watch(ctx context.Context, c client.WithWatch, slices *discoveryv1.EndpointSliceList) error {
	w, err := c.Watch(ctx, &discoveryv1.EndpointSliceList{}, client.InNamespace(Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: helmchart.ReleaseName}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: slices.ResourceVersion}})
	if err != nil {
		return err
	}
	defer w.Stop()
	current := map[string]discoveryv1.EndpointSlice{}
	for _, s := range slices.Items {
		current[s.Name] = s
	}
	for ev := range w.ResultChan() {
		s, ok := ev.Object.(*discoveryv1.EndpointSlice)
		if !ok {
			return fmt.Errorf("watch event %s: %T", ev.Type, ev.Object)
		}
		if ev.Type == watch.Deleted {
			delete(current, s.Name)
		} else {
			current[s.Name] = *s
		}
		var all []discoveryv1.EndpointSlice
		for _, s := range current {
			all = append(all, s)
		}
		k.apply(all, ServiceLag)
	}
	return nil
}

// apply sends new connections to the ready replicas of slices after lag,
// unless a later change was applied first.
func (k *kubeProxy) apply(slices []discoveryv1.EndpointSlice, lag time.Duration) {
	var webhook, hold []string
	for i := range k.webhookAddrs {
		if shutdown.Ready(slices, replicaIP(i)) {
			webhook, hold = append(webhook, k.webhookAddrs[i]), append(hold, k.holdAddrs[i])
		}
	}
	k.mu.Lock()
	k.seq++
	seq := k.seq
	k.mu.Unlock()
	set := func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if seq < k.applied {
			return
		}
		k.applied = seq
		k.webhook.SetBackends(webhook)
		k.hold.SetBackends(hold)
	}
	if lag == 0 {
		set()
		return
	}
	time.AfterFunc(lag, set)
}
