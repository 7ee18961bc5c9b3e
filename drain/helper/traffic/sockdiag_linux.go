package traffic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/albdrain/albdrain/internal/contract"
)

// dumpAttempts bounds retries of a dump the kernel reports as interrupted
// (the table changed while it was read).
const dumpAttempts = 3

// SockDiag reads the socket table through NETLINK_SOCK_DIAG with tcp_info.
// Inside the pod's network namespace this needs no privilege.
type SockDiag struct {
	// Ports, when set, has the kernel send only the sockets whose local
	// port is one of them, and whose local address is Addr when that is
	// valid. A sample then costs the pod's served sockets, not the
	// namespace's whole table: a pod's outbound calls, their TIME_WAITs
	// or a sidecar's connections can number thousands, and copying and
	// parsing them every sample delayed the helper's first sample and
	// spread the next ones (on a loaded machine, past the new flows an NLB
	// still sent while its nodes caught up).
	Ports []uint16
	Addr  netip.Addr
}

// Signal implements Source.
func (SockDiag) Signal() string { return contract.SignalSockDiag }

// Sockets implements Source.
func (d SockDiag) Sockets() ([]Socket, error) {
	var out []Socket
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := d.dump(family)
		if err != nil {
			if family == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue // IPv6 disabled
			}
			return nil, err
		}
		out = append(out, socks...)
	}
	return out, nil
}

func (d SockDiag) dump(family uint8) ([]Socket, error) {
	var err error
	for range dumpAttempts {
		var socks []Socket
		if len(d.Ports) == 0 {
			socks, err = dumpAll(family)
		} else {
			socks, err = dumpLocal(family, localFilter(d.Addr, d.Ports))
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return socks, err
		}
	}
	return nil, err
}

func dumpAll(family uint8) ([]Socket, error) {
	resps, err := netlink.SocketDiagTCPInfo(family)
	if err != nil {
		return nil, err
	}
	out := make([]Socket, len(resps))
	for i, r := range resps {
		out[i] = toSocket(r)
	}
	return out, nil
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

// The kernel's sock_diag ABI (linux/inet_diag.h), for the filtered dump,
// which the netlink library cannot send.
const (
	inetDiagReqBytecode = 1 // INET_DIAG_REQ_BYTECODE, the request's filter
	inetDiagInfo        = 2 // INET_DIAG_INFO, a response's tcp_info
	bcJump              = 1 // INET_DIAG_BC_JMP
	bcSourceCond        = 7 // INET_DIAG_BC_S_COND, with a struct inet_diag_hostcond
	sizeofHostcond      = 8
	allStates           = 0xfff
	sizeofDiagReq       = 56 // struct inet_diag_req_v2
	sizeofDiagMsg       = 72 // struct inet_diag_msg
)

// Offsets in struct tcp_info of the fields Info reads.
const (
	tcpiLastDataRecv  = 52
	tcpiBytesReceived = 128
	tcpiSegsIn        = 140
	tcpiDataSegsIn    = 152
)

// localFilter is the bytecode the kernel runs on each socket to keep those
// whose local port is one of ports and, if addr is valid, whose local
// address is addr (an IPv4 one matches its IPv6-mapped form too): for each
// port one condition on both, and on a match a jump to the end, which
// accepts. Every jump target lies on the chain of "yes" branches, as the
// kernel's check of the bytecode demands.
func localFilter(addr netip.Addr, ports []uint16) []byte {
	family, bits := uint8(unix.AF_UNSPEC), []byte(nil)
	switch {
	case addr.Is4():
		family, bits = unix.AF_INET, addr.AsSlice()
	case addr.Is6():
		family, bits = unix.AF_INET6, addr.AsSlice()
	}
	cond := 4 + sizeofHostcond + len(bits) // the op and its host condition
	const jump = 4
	size := len(ports)*(cond+jump) - jump
	bc := make([]byte, 0, size)
	op := func(code, yes uint8, no int) {
		bc = append(bc, code, yes)
		bc = binary.NativeEndian.AppendUint16(bc, uint16(no))
	}
	for i, p := range ports {
		// A mismatch skips to the next port's condition, or past the
		// end (rejected) after the last.
		op(bcSourceCond, uint8(cond), cond+jump)
		bc = append(bc, family, uint8(8*len(bits)), 0, 0)
		bc = binary.NativeEndian.AppendUint32(bc, uint32(p)) // the port, an int
		bc = append(bc, bits...)
		if i < len(ports)-1 {
			op(bcJump, jump, size-len(bc)) // from here to the end
		}
	}
	return bc
}

// diagRequest is a TCP dump request of one family with tcp_info and a
// bytecode filter (struct inet_diag_req_v2 and its attribute).
type diagRequest struct {
	family   uint8
	bytecode []byte
}

func (r diagRequest) Len() int { return sizeofDiagReq + unix.SizeofRtAttr + len(r.bytecode) }

func (r diagRequest) Serialize() []byte {
	b := make([]byte, sizeofDiagReq, r.Len())
	b[0], b[1], b[2] = r.family, unix.IPPROTO_TCP, 1<<(inetDiagInfo-1)
	binary.NativeEndian.PutUint32(b[4:], allStates)
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofRtAttr+len(r.bytecode)))
	b = binary.NativeEndian.AppendUint16(b, inetDiagReqBytecode)
	return append(b, r.bytecode...)
}

// dumpLocal dumps family's TCP sockets that bytecode keeps.
func dumpLocal(family uint8, bytecode []byte) ([]Socket, error) {
	req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP)
	req.AddData(diagRequest{family: family, bytecode: bytecode})
	var out []Socket
	var bad error
	err := req.ExecuteIter(unix.NETLINK_INET_DIAG, nl.SOCK_DIAG_BY_FAMILY, func(msg []byte) bool {
		s, err := parseDiagMsg(msg)
		if err != nil {
			bad = err
			return false
		}
		out = append(out, s)
		return true
	})
	if err == nil {
		err = bad
	}
	return out, err
}

// parseDiagMsg reads one struct inet_diag_msg and its tcp_info.
func parseDiagMsg(msg []byte) (Socket, error) {
	if len(msg) < sizeofDiagMsg {
		return Socket{}, fmt.Errorf("sock_diag: a %d-byte message", len(msg))
	}
	addr := func(ip []byte, port []byte) netip.AddrPort {
		a, _ := netip.AddrFromSlice(ip)
		if msg[0] == unix.AF_INET {
			a, _ = netip.AddrFromSlice(ip[:4])
		}
		return netip.AddrPortFrom(a.Unmap(), binary.BigEndian.Uint16(port))
	}
	s := Socket{Local: addr(msg[8:24], msg[4:6]), Remote: addr(msg[24:40], msg[6:8]), State: msg[1]}
	attrs, err := nl.ParseRouteAttr(msg[sizeofDiagMsg:])
	if err != nil {
		return Socket{}, fmt.Errorf("sock_diag: %w", err)
	}
	for _, a := range attrs {
		if a.Attr.Type != inetDiagInfo {
			continue
		}
		// A shorter tcp_info (an older kernel) leaves the later fields
		// zero, as the netlink library does.
		u32 := func(off int) uint32 {
			if len(a.Value) < off+4 {
				return 0
			}
			return binary.NativeEndian.Uint32(a.Value[off:])
		}
		var bytes uint64
		if len(a.Value) >= tcpiBytesReceived+8 {
			bytes = binary.NativeEndian.Uint64(a.Value[tcpiBytesReceived:])
		}
		s.Info = &Info{
			LastDataRecv:  time.Duration(u32(tcpiLastDataRecv)) * time.Millisecond,
			BytesReceived: bytes,
			DataSegsIn:    u32(tcpiDataSegsIn),
			Counters:      u32(tcpiSegsIn) > 0, // as in toSocket
		}
	}
	return s, nil
}
