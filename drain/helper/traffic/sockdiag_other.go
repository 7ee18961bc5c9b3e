//go:build !linux

package traffic

import (
	"errors"

	"github.com/albdrain/albdrain/internal/contract"
)

// SockDiag is Linux's NETLINK_SOCK_DIAG, absent here.
type SockDiag struct {
	// Ports is Linux's SockDiag.Ports.
	Ports []uint16
}

// Signal implements Source.
func (SockDiag) Signal() string { return contract.SignalSockDiag }

// Sockets implements Source.
func (SockDiag) Sockets() ([]Socket, error) { return nil, errors.New("sock_diag: Linux only") }
