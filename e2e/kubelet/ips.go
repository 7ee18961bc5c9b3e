package kubelet

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
)

// ipAllocator hands out pod IPs from one 127.x.0.0/16 block. Addresses are
// never reused within a run: a new pod on an IP the ALB still drains would
// receive that old target's traffic, which is a real-world hazard but not the
// one the scenarios measure.
type ipAllocator struct {
	mu   sync.Mutex
	next netip.Addr
	last netip.Addr
}

// newIPAllocator picks the block's second octet at random so that two
// harnesses on one machine (a test binary and the demo, say) rarely meet;
// when they do, listening fails and the pod moves to the next address.
func newIPAllocator() *ipAllocator {
	b := byte(16 + rand.IntN(230))
	return &ipAllocator{
		next: netip.AddrFrom4([4]byte{127, b, 1, 1}),
		last: netip.AddrFrom4([4]byte{127, b, 255, 254}),
	}
}

var errIPsExhausted = errors.New("loopback pod IPs exhausted")

// allocate returns the next unused address, skipping .0 and .255 so no pod
// gets an address that looks like a network or broadcast address.
func (a *ipAllocator) allocate() (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.next.Compare(a.last) <= 0 {
		ip := a.next
		a.next = a.next.Next()
		if b := ip.As4(); b[3] != 0 && b[3] != 255 {
			return ip, nil
		}
	}
	return netip.Addr{}, errIPsExhausted
}
