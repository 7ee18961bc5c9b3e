package traffic

import (
	"net/netip"
	"time"

	"github.com/albdrain/albdrain/drain/helper/procnet"
	"github.com/albdrain/albdrain/internal/contract"
)

// TCP states, as the kernel numbers them.
const (
	stateEstablished = 1
	stateSynRecv     = 3
	stateListen      = procnet.StateListen
)

// Socket is one TCP socket of the pod's network namespace.
type Socket struct {
	Local, Remote netip.AddrPort
	State         uint8
	// Info is the kernel's tcp_info; nil when the source has none (the
	// /proc/net/tcp fallback, or a socket in TIME_WAIT).
	Info *Info
}

// Info is the part of tcp_info the quiet period reads.
type Info struct {
	// LastDataRecv is how long ago the socket last received data (or was
	// established, if it never did).
	LastDataRecv time.Duration
	// BytesReceived counts the data received. Counters is false when the
	// kernel's tcp_info is too short to carry it (before Linux 4.2): the
	// library then leaves it zero, indistinguishable from no data.
	BytesReceived uint64
	Counters      bool
	// DataSegsIn counts the segments that carried data (Linux 4.6 and
	// later; zero before).
	DataSegsIn uint32
}

// Source reads the socket table.
type Source interface {
	// Signal names the source, one of the contract's Signal values.
	Signal() string
	Sockets() ([]Socket, error)
}

// ProcNet is the fallback source: /proc/net/tcp{,6} under Root. It carries
// no tcp_info, so it shows new connections but not requests on kept-alive ones.
type ProcNet struct {
	Root string
}

// Signal implements Source.
func (ProcNet) Signal() string { return contract.SignalProcNet }

// Sockets implements Source.
func (p ProcNet) Sockets() ([]Socket, error) {
	conns, err := procnet.Read(p.Root)
	if err != nil {
		return nil, err
	}
	out := make([]Socket, len(conns))
	for i, c := range conns {
		out[i] = Socket{Local: c.Local, Remote: c.Remote, State: c.State}
	}
	return out, nil
}

// Open picks the best source that works here: sock_diag, else procRoot's
// socket tables. sock_diag is asked for the sockets f could accept only
// (its ports on its pod IP), or for all where the kernel refuses the filter
// or f has no ports. err says why sock_diag is unusable, for the hold's
// log; both failing leaves src nil.
func Open(procRoot string, f Filter) (src Source, sockDiagErr, procErr error) {
	for _, sd := range []SockDiag{{Ports: f.Ports, Addr: f.PodIP}, {}} {
		if _, sockDiagErr = sd.Sockets(); sockDiagErr == nil {
			return sd, nil, nil
		}
		if len(f.Ports) == 0 {
			break
		}
	}
	pn := ProcNet{Root: procRoot}
	if _, procErr = pn.Sockets(); procErr == nil {
		return pn, sockDiagErr, nil
	}
	return nil, sockDiagErr, procErr
}
