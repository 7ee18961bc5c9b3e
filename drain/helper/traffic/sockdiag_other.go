//go:build !linux

package traffic

import (
	"errors"
	"net/netip"

	"github.com/albdrain/albdrain/internal/contract"
)

// SockDiag is Linux's NETLINK_SOCK_DIAG, absent here.
type SockDiag struct {
	// Ports and Addr are Linux's SockDiag filter.
	Ports []uint16
	Addr  netip.Addr
}

// Signal implements Source.
func (SockDiag) Signal() string { return contract.SignalSockDiag }

// Sockets implements Source.
func (SockDiag) Sockets() ([]Socket, error) { return nil, errors.New("sock_diag: Linux only") }
