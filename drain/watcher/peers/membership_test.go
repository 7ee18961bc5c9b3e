package peers

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// apiserver runs a real kube-apiserver and etcd; -short skips it.
func apiserver(t *testing.T) client.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a kube-apiserver and etcd (KUBEBUILDER_ASSETS)")
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kube-apiserver")); err != nil {
		t.Fatalf("KUBEBUILDER_ASSETS has no kube-apiserver (run `make assets`, or -short): %v", err)
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counted counts the reads of single objects, and the updates.
type counted struct {
	client.Client
	gets, updates atomic.Int64
}

func (c *counted) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets.Add(1)
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *counted) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.updates.Add(1)
	return c.Client.Update(ctx, obj, opts...)
}

func readyOf(r *Ring) []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so after 20s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A replica renews its Lease without reading it (but after a conflict), and
// leaves the ring as soon as its stop begins, while its manager still runs:
// its Lease is gone and it polls every group itself.
func TestMembershipRenewsBlindAndLeavesAsItsStopBegins(t *testing.T) {
	api := apiserver(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	self, other := netip.MustParseAddrPort("10.0.0.1:8443"), netip.MustParseAddrPort("10.0.0.2:8443")
	if err := (&Membership{Client: api, Reader: api, Namespace: "default", Ring: &Ring{Self: other}, Renew: time.Minute}).renew(ctx); err != nil {
		t.Fatal(err)
	}
	c := &counted{Client: api}
	ring := &Ring{Self: self}
	stopping, left := make(chan struct{}), make(chan struct{})
	m := &Membership{Client: c, Reader: c, Namespace: "default", Ring: ring, Renew: 20 * time.Millisecond,
		Stopping: stopping, Leave: func() { close(left) }}
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()

	eventually(t, "both replicas in the ring", func() bool { return len(readyOf(ring)) == 2 })
	eventually(t, "five renewals", func() bool { return c.updates.Load() >= 5 })
	if n := c.gets.Load(); n != 1 {
		t.Errorf("%d reads of the Lease for %d renewals, want 1 (before it was created)", n, c.updates.Load())
	}
	// Another writer moves the Lease on: the next renewal conflicts, reads
	// it again and writes.
	// Only a write of the test's own that succeeds leaves the replica
	// holding an old version: one that lost to a renewal is tried again.
	key := client.ObjectKey{Namespace: "default", Name: m.leaseName()}
	for moved := false; !moved; {
		var l coordinationv1.Lease
		if err := api.Get(ctx, key, &l); err != nil {
			t.Fatal(err)
		}
		l.Annotations = map[string]string{"moved": "on"}
		switch err := api.Update(ctx, &l); {
		case err == nil:
			moved = true
		case !apierrors.IsConflict(err):
			t.Fatal(err)
		}
	}
	eventually(t, "a read after the conflict", func() bool { return c.gets.Load() >= 2 })
	renewed := c.updates.Load()
	eventually(t, "renewals after the conflict", func() bool { return c.updates.Load() >= renewed+2 })

	close(stopping)
	select {
	case <-left:
	case <-time.After(20 * time.Second):
		t.Fatal("the replica did not leave when its stop began")
	}
	if r := readyOf(ring); r != nil {
		t.Errorf("ring %v after leaving, want empty: the replica polls every group itself", r)
	}
	eventually(t, "the Lease deleted", func() bool { return apierrors.IsNotFound(api.Get(ctx, key, &coordinationv1.Lease{})) })
	select {
	case err := <-done:
		t.Fatalf("membership ended (%v) before the manager stopped", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var all coordinationv1.LeaseList
	if err := api.List(context.Background(), &all, client.InNamespace("default"), client.MatchingLabels{LabelPeer: "true"}); err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 1 || all.Items[0].Spec.HolderIdentity == nil || *all.Items[0].Spec.HolderIdentity != other.String() {
		t.Errorf("Leases left %v, want the other replica's only", names(all.Items))
	}
}

func names(ls []coordinationv1.Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	return out
}
