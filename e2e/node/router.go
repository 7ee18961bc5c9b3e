package node

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sync"
	"testing"

	"github.com/albdrain/albdrain/e2e/reaper"
)

// Router joins several nodes to the host as a cluster's network does: a
// network namespace of its own, the only one besides the nodes' with IP
// forwarding on, reached from the host by a veth pair and reaching each
// node by another. Every address lies in Subnet, a private /16 no host
// route uses:
//
//	Subnet.0.0/17            the pods of every node (Pods)
//	Subnet.(32i).0/19        node i's bridge (.1) and pods
//	Subnet.128.0/30          the host (HostIP, .1) and the router (.2)
//	Subnet.128.(4i+4)/30     the router (+1) and node i (+2)
//
// The host routes Subnet through the router, the router each node's pods
// through that node, and each node Subnet through the router, so pods on
// different nodes, and the host and any pod, reach each other.
type Router struct {
	// Name is the router's network namespace, under /run/netns.
	Name string
	// Subnet holds every address of the router, its nodes and their pods.
	Subnet netip.Prefix
	// Pods holds the pods of every node: the cluster's pod CIDR.
	Pods netip.Prefix
	// HostIP is the host's end of its veth pair with the router: where the
	// nodes reach the apiserver's forwarders and the cluster DNS.
	HostIP   netip.Addr
	routerIP netip.Addr
	hostLink string

	mu      sync.Mutex
	nodes   int
	removed bool
	// release takes remove's shell form back from the reaper.
	release func()
	// services is set once a node has published the cluster-wide parts of
	// Services (the kubernetes Service's endpoint, the cluster DNS).
	services bool
}

// maxRouterNodes is how many nodes the address plan has room for.
const maxRouterNodes = 4

// NewRouter creates the router's namespace and its link to the host; it
// is removed at the test's cleanup, after the nodes attached to it (start
// them after NewRouter).
func NewRouter(t testing.TB) *Router {
	t.Helper()
	r, err := newRouter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Remove(); err != nil {
			t.Errorf("remove router: %v", err)
		}
	})
	return r
}

// Remove deletes the router's namespace and its link to the host, once;
// the nodes behind it must be stopped first.
func (r *Router) Remove() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.removed {
		return nil
	}
	r.removed = true
	if err := r.remove(); err != nil {
		// The reaper tries again when the test process ends.
		return err
	}
	r.release()
	return nil
}

func newRouter() (_ *Router, err error) {
	suffix := randomHex(3)
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	r := &Router{
		Name:     "albdrain-r-" + suffix,
		Subnet:   subnet,
		Pods:     netip.PrefixFrom(subnet.Addr(), 17),
		HostIP:   subnetAddr(subnet, 128, 1),
		routerIP: subnetAddr(subnet, 128, 2),
		hostLink: "albr-" + suffix,
	}
	if err := run("ip", "netns", "add", r.Name); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.remove())
		}
	}()
	if r.release, err = reaper.OnDeath(removeNetnsCommand(r.Name, r.hostLink)); err != nil {
		return nil, err
	}
	return r, runAll([][]string{
		{"ip", "-n", r.Name, "link", "set", "lo", "up"},
		{"ip", "link", "add", r.hostLink, "type", "veth", "peer", "name", "eth0", "netns", r.Name},
		{"ip", "addr", "add", r.HostIP.String() + "/30", "dev", r.hostLink},
		{"ip", "link", "set", r.hostLink, "up"},
		{"ip", "-n", r.Name, "addr", "add", r.routerIP.String() + "/30", "dev", "eth0"},
		{"ip", "-n", r.Name, "link", "set", "eth0", "up"},
		// Forwarding between the host and the nodes, in the router's namespace only.
		{"ip", "netns", "exec", r.Name, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
		{"ip", "route", "add", r.Subnet.String(), "via", r.routerIP.String(), "dev", r.hostLink},
	})
}

// attach creates the next node's network behind the router: its namespace,
// a veth pair to the router, its bridge, and the routes both ways.
func (r *Router) attach() (*Network, error) {
	r.mu.Lock()
	i := r.nodes
	r.nodes++
	r.mu.Unlock()
	if i >= maxRouterNodes {
		return nil, fmt.Errorf("the router has room for %d nodes", maxRouterNodes)
	}
	suffix := randomHex(3)
	link := subnetAddr(r.Subnet, 128, byte(4*i+4))
	n := &Network{
		Name:        "albdrain-" + suffix,
		Subnet:      r.Subnet,
		PodRange:    netip.PrefixFrom(subnetAddr(r.Subnet, byte(32*i), 0), 19),
		ClusterPods: r.Pods,
		Bridge:      subnetAddr(r.Subnet, byte(32*i), 1),
		HostIP:      r.HostIP,
		NodeIP:      link.Next().Next(),
		PodRoute:    r.Subnet,
	}
	routerSide := link.Next()
	routerLink := "n" + suffix
	steps := [][]string{
		{"ip", "-n", r.Name, "link", "add", routerLink, "type", "veth", "peer", "name", "eth0", "netns", n.Name},
		{"ip", "-n", r.Name, "addr", "add", routerSide.String() + "/30", "dev", routerLink},
		{"ip", "-n", r.Name, "link", "set", routerLink, "up"},
		{"ip", "-n", n.Name, "addr", "add", n.NodeIP.String() + "/30", "dev", "eth0"},
		{"ip", "-n", n.Name, "link", "set", "eth0", "up"},
	}
	steps = append(steps, n.bridgeSteps()...)
	steps = append(steps,
		[]string{"ip", "-n", n.Name, "route", "add", r.Subnet.String(), "via", routerSide.String(), "dev", "eth0"},
		[]string{"ip", "-n", r.Name, "route", "add", n.PodRange.String(), "via", n.NodeIP.String(), "dev", routerLink},
	)
	return n.build(steps)
}

// remove deletes the router's namespace and the host's end of its veth
// pair (with the route through it).
func (r *Router) remove() error {
	var errs []error
	if exec.Command("ip", "link", "show", r.hostLink).Run() == nil {
		errs = append(errs, run("ip", "link", "del", r.hostLink))
	}
	errs = append(errs, run("ip", "netns", "del", r.Name))
	return errors.Join(errs...)
}

// claimServices reports whether the caller is the first node to set up the
// cluster-wide parts of Services.
func (r *Router) claimServices() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := !r.services
	r.services = true
	return first
}

// subnetAddr is the address c.d in the /16 subnet.
func subnetAddr(subnet netip.Prefix, c, d byte) netip.Addr {
	b := subnet.Addr().As4()
	return netip.AddrFrom4([4]byte{b[0], b[1], c, d})
}

// runAll runs setup commands in order, stopping at the first that fails.
func runAll(steps [][]string) error {
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}
