package traffic

import (
	"errors"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/albdrain/albdrain/internal/contract"
)

// dumpAttempts bounds retries of a dump the kernel reports as interrupted
// (the table changed while it was read).
const dumpAttempts = 3

// SockDiag reads the socket table through NETLINK_SOCK_DIAG with tcp_info.
// Inside the pod's network namespace this needs no privilege.
type SockDiag struct{}

// Signal implements Source.
func (SockDiag) Signal() string { return contract.SignalSockDiag }

// Sockets implements Source.
func (SockDiag) Sockets() ([]Socket, error) {
	var out []Socket
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		resps, err := dump(family)
		if err != nil {
			if family == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue // IPv6 disabled
			}
			return nil, err
		}
		for _, r := range resps {
			out = append(out, toSocket(r))
		}
	}
	return out, nil
}

func dump(family uint8) ([]*netlink.InetDiagTCPInfoResp, error) {
	var err error
	for range dumpAttempts {
		var resps []*netlink.InetDiagTCPInfoResp
		resps, err = netlink.SocketDiagTCPInfo(family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return resps, err
		}
	}
	return nil, err
}

func toSocket(r *netlink.InetDiagTCPInfoResp) Socket {
	m := r.InetDiagMsg
	addr := func(ip []byte, port uint16) netip.AddrPort {
		a, _ := netip.AddrFromSlice(ip)
		return netip.AddrPortFrom(a.Unmap(), port)
	}
	s := Socket{
		Local:  addr(m.ID.Source, m.ID.SourcePort),
		Remote: addr(m.ID.Destination, m.ID.DestinationPort),
		State:  m.State,
	}
	if ti := r.TCPInfo; ti != nil {
		s.Info = &Info{
			LastDataRecv:  time.Duration(ti.Last_data_recv) * time.Millisecond,
			BytesReceived: ti.Bytes_received,
			DataSegsIn:    ti.Data_segs_in,
			// Every connected socket has received a segment (the kernel
			// starts an accepted socket's count at 1), so a zero count
			// means the kernel's tcp_info ended before these fields.
			Counters: ti.Segs_in > 0,
		}
	}
	return s
}
