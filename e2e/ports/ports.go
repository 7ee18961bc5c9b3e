// Package ports chooses the TCP ports of servers the harness starts later,
// in its own process or in a child (kube-apiserver, etcd, the controller
// manager, albdrain's manager), where a listener on port 0 cannot be used.
//
// A port that was merely free a moment ago races with every other process:
// test packages run in parallel processes, and the kernel hands ports of its
// ephemeral range to any `:0` listener and to every outgoing connection. So
// the ports chosen here lie outside that range, where the kernel gives none
// out, and each is reserved among the harness's processes, so that no two
// of them choose the same one.
package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the lowest port chosen: fixed-port services (the kubelet's
// 10250, etcd's 2379, common development servers) sit below it.
const lowest = 20000

// namePrefix names the abstract Unix sockets by which the harness's
// processes reserve ports.
const namePrefix = "albdrain-e2e-port-"

// Reserve returns a TCP port that is free on every local address and
// reserved for this process until it exits: another process of the harness
// calling Reserve never gets it, and the kernel gives it to no `:0`
// listener or outgoing connection, since it lies outside the ephemeral
// range (/proc/sys/net/ipv4/ip_local_port_range, and not among
// ip_local_reserved_ports).
func Reserve() (int, error) {
	c, err := shared()
	if err != nil {
		return 0, err
	}
	return c.reserve()
}

var shared = sync.OnceValues(func() (*chooser, error) {
	cands, err := candidates("/proc/sys/net/ipv4")
	if err != nil {
		return nil, err
	}
	return &chooser{candidates: cands, prefix: namePrefix, probe: true}, nil
})

// chooser reserves ports among candidates. A reservation is an abstract
// Unix socket named after the port and held open: the kernel lets one
// socket bind a name, drops it when the process exits however it ends, and
// leaves nothing in the file system. The socket is close-on-exec, so the
// child that binds the port does not hold it.
type chooser struct {
	candidates []int
	prefix     string
	// probe binds each reserved port once, to skip one that a process
	// outside the harness serves on.
	probe bool

	mu   sync.Mutex
	held []net.Listener
}

// reserve scans the candidates from a random one, so that processes starting
// together try different ports first.
func (c *chooser) reserve() (int, error) {
	n := len(c.candidates)
	start := rand.IntN(n)
	for i := range n {
		port := c.candidates[(start+i)%n]
		ln, err := net.Listen("unix", "@"+c.prefix+strconv.Itoa(port))
		if err != nil {
			continue // reserved by another process of the harness, or by this one
		}
		if c.probe && !free(port) {
			ln.Close()
			continue
		}
		c.mu.Lock()
		c.held = append(c.held, ln)
		c.mu.Unlock()
		return port, nil
	}
	return 0, fmt.Errorf("no TCP port left to reserve: all %d outside the ephemeral range are taken", n)
}

// free reports whether port can be bound on every local address.
func free(port int) bool {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// candidates lists the ports from lowest up that the kernel does not give
// out by itself, read from its settings in dir.
func candidates(dir string) ([]int, error) {
	raw, err := os.ReadFile(dir + "/ip_local_port_range")
	if err != nil {
		return nil, err
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(raw), &lo, &hi); err != nil {
		return nil, fmt.Errorf("ip_local_port_range %q: %w", raw, err)
	}
	reserved := map[int]bool{}
	if raw, err := os.ReadFile(dir + "/ip_local_reserved_ports"); err == nil {
		if reserved, err = parsePortList(strings.TrimSpace(string(raw))); err != nil {
			return nil, fmt.Errorf("ip_local_reserved_ports: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []int
	for p := lowest; p <= 65535; p++ {
		if (p < lo || p > hi) && !reserved[p] {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no TCP port from %d up lies outside the ephemeral range %d-%d", lowest, lo, hi)
	}
	return out, nil
}

// parsePortList reads the kernel's list of ports and ranges, "8080,9000-9010".
func parsePortList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	if s == "" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		first, last, isRange := strings.Cut(item, "-")
		lo, err := strconv.Atoi(first)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", item, err)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(last); err != nil {
				return nil, fmt.Errorf("port range %q: %w", item, err)
			}
		}
		for p := lo; p <= hi; p++ {
			out[p] = true
		}
	}
	return out, nil
}
