package peers

import (
	"context"
	"encoding/hex"
	"net/netip"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// LabelPeer marks the Leases through which replicas find each other.
const LabelPeer = "albdrain.io/peer"

// Membership keeps this replica's Lease current and the Ring's set of ready
// replicas with it: each replica renews a Lease naming its peer address, and
// reads the others'. A replica leaves as its stop begins: it deletes its
// Lease, and from then on polls for itself and serves no other (Leave). One
// that dies drops out when its Lease lapses, and until then its peers fall
// back to polling for themselves.
type Membership struct {
	Client    client.Client
	Reader    client.Reader
	Namespace string
	Ring      *Ring
	// Renew is how often the Lease is renewed and the others read; a Lease
	// lapses after three.
	Renew time.Duration
	// Stopping is closed when the replica's stop begins (shutdown.Gate),
	// long before the manager's context ends: the replica leaves then.
	Stopping <-chan struct{}
	// Leave is called as the replica leaves, before its Lease is deleted
	// (elbv2.Poller.Leave): readers waiting on it are answered at once.
	Leave func()

	// lease is the Lease as last written, which the next renewal updates
	// without reading it first; nil reads it.
	lease *coordinationv1.Lease
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica
// takes part.
func (m *Membership) NeedLeaderElection() bool { return false }

// leaseName is one per replica, from its address: unique among the replicas
// of a Deployment, and among managers sharing one process in tests.
func (m *Membership) leaseName() string {
	b, _ := m.Ring.Self.MarshalBinary()
	return "albdrain-peer-" + hex.EncodeToString(b)
}

// Start runs until the replica's stop begins or ctx ends, then leaves.
func (m *Membership) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("peers")
	t := time.NewTicker(m.Renew)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			break // the stop's own errors are not worth a log line
		}
		if err := m.renew(ctx); err != nil {
			logger.Error(err, "renewing the peer Lease; replicas poll for themselves meanwhile")
		}
		if err := m.read(ctx); err != nil {
			logger.Error(err, "reading the peer Leases; this replica polls every group itself meanwhile")
			m.Ring.SetReady(nil)
		}
		select {
		case <-ctx.Done():
			m.leave(ctx)
			return nil
		case <-m.Stopping:
			logger.Info("stopping: leaving the replicas that share polls")
			m.leave(ctx)
			<-ctx.Done()
			return nil
		case <-t.C:
		}
	}
	m.leave(ctx)
	return nil
}

// leave takes the replica out of the ring here and in the others'.
func (m *Membership) leave(ctx context.Context) {
	m.Ring.SetReady(nil)
	if m.Leave != nil {
		m.Leave()
	}
	del := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: m.leaseName()}}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := client.IgnoreNotFound(m.Client.Delete(cctx, del)); err != nil {
		log.FromContext(ctx).WithName("peers").Error(err, "deleting the peer Lease; it lapses by itself")
	}
}

// renew writes the Lease from the copy of its last write; it reads the
// Lease only when there is no copy, or the write conflicts (then at once).
func (m *Membership) renew(ctx context.Context) error {
	err := m.write(ctx)
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		m.lease = nil
		err = m.write(ctx)
	}
	return err
}

func (m *Membership) write(ctx context.Context) error {
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(m.Ring.Self.String()),
		LeaseDurationSeconds: ptr.To(int32(max(1, (3*m.Renew).Round(time.Second)/time.Second))),
		RenewTime:            &now,
	}
	if m.lease == nil {
		lease := &coordinationv1.Lease{}
		key := client.ObjectKey{Namespace: m.Namespace, Name: m.leaseName()}
		err := m.Reader.Get(ctx, key, lease)
		switch {
		case apierrors.IsNotFound(err):
			lease = &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: key.Name, Labels: map[string]string{LabelPeer: "true"}},
				Spec:       spec,
			}
			if err := m.Client.Create(ctx, lease); err != nil {
				return err
			}
			m.lease = lease
			return nil
		case err != nil:
			return err
		}
		m.lease = lease
	}
	lease := m.lease.DeepCopy()
	lease.Spec = spec
	if err := m.Client.Update(ctx, lease); err != nil {
		return err
	}
	m.lease = lease
	return nil
}

func (m *Membership) read(ctx context.Context) error {
	var leases coordinationv1.LeaseList
	if err := m.Reader.List(ctx, &leases, client.InNamespace(m.Namespace), client.MatchingLabels{LabelPeer: "true"}); err != nil {
		return err
	}
	m.Ring.SetReady(live(leases.Items, time.Now()))
	return nil
}

// live are the peer addresses of the Leases not lapsed at now.
func live(leases []coordinationv1.Lease, now time.Time) []netip.AddrPort {
	var out []netip.AddrPort
	for _, l := range leases {
		if l.Spec.HolderIdentity == nil || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
			continue
		}
		if now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)) {
			continue
		}
		a, err := netip.ParseAddrPort(*l.Spec.HolderIdentity)
		if err != nil {
			continue
		}
		out = append(out, a)
	}
	return out
}
