// Package procnet reads the kernel's TCP socket tables, /proc/net/tcp and
// /proc/net/tcp6, of the network namespace the reading process lives in.
// The helper uses them to see which connections its pod has accepted
// without needing any privilege or cooperation from the application.
package procnet

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// StateListen is the kernel's TCP_LISTEN state: a listening socket, not a connection.
const StateListen = 0x0A

// Conn is one row of a TCP socket table.
type Conn struct {
	Local, Remote netip.AddrPort
	// State is the kernel's TCP state number (1 established ... 10 listen).
	State uint8
}

// Read returns the sockets in root/net/tcp and root/net/tcp6, root being
// the proc mount ("/proc" outside tests). A missing tcp6 table (IPv6
// disabled) is not an error. IPv4-mapped IPv6 addresses are unmapped so a
// dual-stack listener's connections compare equal to IPv4 ones.
func Read(root string) ([]Conn, error) {
	var all []Conn
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(root, "net", name))
		if errors.Is(err, fs.ErrNotExist) && name == "tcp6" {
			continue
		}
		if err != nil {
			return nil, err
		}
		conns, err := Parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		all = append(all, conns...)
	}
	return all, nil
}

// Parse reads one table in the format of /proc/net/tcp or /proc/net/tcp6.
func Parse(r io.Reader) ([]Conn, error) {
	sc := bufio.NewScanner(r)
	var conns []Conn
	header := true
	for sc.Scan() {
		if header {
			header = false
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 4 {
			return nil, fmt.Errorf("short line %q", sc.Text())
		}
		local, err := parseAddrPort(fields[1])
		if err != nil {
			return nil, fmt.Errorf("local address %q: %w", fields[1], err)
		}
		remote, err := parseAddrPort(fields[2])
		if err != nil {
			return nil, fmt.Errorf("remote address %q: %w", fields[2], err)
		}
		st, err := strconv.ParseUint(fields[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", fields[3], err)
		}
		conns = append(conns, Conn{Local: local, Remote: remote, State: uint8(st)})
	}
	return conns, sc.Err()
}

// parseAddrPort decodes "0100007F:1F90". The kernel prints the address as
// 32-bit words in host byte order (%08X of each word) and the port already
// converted to host order.
func parseAddrPort(s string) (netip.AddrPort, error) {
	addrHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, errors.New("missing port")
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	raw, err := hex.DecodeString(addrHex)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(raw) != 4 && len(raw) != 16 {
		return netip.AddrPort{}, fmt.Errorf("address of %d bytes", len(raw))
	}
	// hex.DecodeString read each word most significant byte first; put the
	// word back into host order to recover the bytes as they were in memory.
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}
