package traffic

import (
	"net/netip"
	"slices"
)

// Filter picks the sockets a load balancer could have opened. Its fields
// are known when the hold starts.
type Filter struct {
	// PodIP is the pod's address; unset accepts any local address.
	PodIP netip.Addr
	// NodeIP is the node's address, whose connections are the kubelet's.
	NodeIP netip.Addr
	// Ports are the served ports.
	Ports []uint16
}

func (f Filter) accepts(s Socket) bool {
	if s.State == stateListen || !slices.Contains(f.Ports, s.Local.Port()) {
		return false
	}
	if f.PodIP.IsValid() && s.Local.Addr() != f.PodIP {
		return false
	}
	peer := s.Remote.Addr()
	switch {
	case f.PodIP.IsValid() && peer == f.PodIP: // the pod talking to itself
		return false
	case f.NodeIP.IsValid() && peer == f.NodeIP:
		return false
	case peer.IsLoopback():
		// Sidecars and local agents, unless the pod itself lives on
		// loopback (as in tests), where the pod IP decides.
		return f.PodIP.IsValid() && f.PodIP.IsLoopback()
	}
	return true
}
