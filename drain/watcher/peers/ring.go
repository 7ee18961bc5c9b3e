package peers

import (
	"hash/fnv"
	"net/netip"
	"slices"
	"sync"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
)

// Ring assigns each target group to one of the ready replicas by
// rendezvous hashing: every replica that sees the same set computes the
// same owner, and a replica joining or leaving moves only its own share of
// the groups.
type Ring struct {
	// Self is the address where this replica serves its peers.
	Self netip.AddrPort
	// Client reaches the other replicas.
	Client *Client

	mu    sync.Mutex
	ready []netip.AddrPort
}

// SetReady replaces the set of ready replicas. A set without this replica
// (it is stopping, or not ready yet) polls every group here: a replica
// about to stop must not make others wait on it, nor rely on them.
func (r *Ring) SetReady(addrs []netip.AddrPort) {
	addrs = slices.Clone(addrs)
	slices.SortFunc(addrs, netip.AddrPort.Compare)
	addrs = slices.Compact(addrs)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ready = addrs
}

// Owner implements elbv2.Owners.
func (r *Ring) Owner(tgARN string) elbv2.Peer {
	r.mu.Lock()
	ready := r.ready
	r.mu.Unlock()
	if !slices.Contains(ready, r.Self) {
		return nil
	}
	var best netip.AddrPort
	var bestWeight uint64
	for _, a := range ready {
		if w := weight(tgARN, a); !best.IsValid() || w > bestWeight {
			best, bestWeight = a, w
		}
	}
	if best == r.Self {
		return nil
	}
	return peer{addr: best, self: r.Self, c: r.Client}
}

func weight(tgARN string, a netip.AddrPort) uint64 {
	h := fnv.New64a()
	h.Write([]byte(tgARN))
	h.Write([]byte{0})
	b, _ := a.MarshalBinary()
	h.Write(b)
	return mix(h.Sum64())
}

// mix spreads FNV's output over all 64 bits (splitmix64's finaliser): the
// owner is the largest weight, and FNV alone leaves the high bits of
// similar inputs close together.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}
