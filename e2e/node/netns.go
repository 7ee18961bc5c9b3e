package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os/exec"
	"strings"
)

// Network is the node's own network: a network namespace joined to the host
// by a veth pair, with a bridge for the pods. Every address lies in Subnet,
// a private /16 that no host route uses, so traffic to it never leaves the
// machine:
//
//	Subnet.0.0/17    the bridge (x.x.0.1) and pods (host-local IPAM)
//	Subnet.128.0/30  the veth: the host at .1, the node at .2
type Network struct {
	// Name is the network namespace, under /run/netns.
	Name string
	// Subnet holds every address of the node and its pods.
	Subnet netip.Prefix
	// PodRange is where CNI assigns this node's pod addresses.
	PodRange netip.Prefix
	// ClusterPods holds every node's pods (kube-proxy's cluster CIDR):
	// PodRange for a node alone, the router's Pods behind a Router.
	ClusterPods netip.Prefix
	// PodRoute is what pods reach through the bridge besides their own
	// subnet and Services: the host's end of the veth for a node alone,
	// the router's Subnet (the host and other nodes' pods) behind a Router.
	PodRoute netip.Prefix
	// Bridge is the bridge's address, the pods' next hop to the host.
	Bridge netip.Addr
	// HostIP and NodeIP are the two ends of the veth pair.
	HostIP, NodeIP netip.Addr
	// hostLink is the host's end of the veth pair; none behind a Router.
	hostLink string
}

// BridgeName is the pods' bridge inside the node's namespace.
const BridgeName = "albdrain0"

// newNetwork creates the namespace, the veth pair and the bridge, and routes
// the pod range from the host through the node. The host route goes with
// the veth when the namespace is deleted.
func newNetwork() (*Network, error) {
	suffix := randomHex(3)
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	at := func(c, d byte) netip.Addr { return subnetAddr(subnet, c, d) }
	n := &Network{
		Name:     "albdrain-" + suffix,
		Subnet:   subnet,
		PodRange: netip.PrefixFrom(at(0, 0), 17),
		Bridge:   at(0, 1),
		HostIP:   at(128, 1),
		NodeIP:   at(128, 2),
		hostLink: "albn-" + suffix,
	}
	n.ClusterPods = n.PodRange
	n.PodRoute = netip.PrefixFrom(n.HostIP, 32)
	steps := [][]string{
		{"ip", "link", "add", n.hostLink, "type", "veth", "peer", "name", "eth0", "netns", n.Name},
		{"ip", "addr", "add", n.HostIP.String() + "/30", "dev", n.hostLink},
		{"ip", "link", "set", n.hostLink, "up"},
		{"ip", "-n", n.Name, "addr", "add", n.NodeIP.String() + "/30", "dev", "eth0"},
		{"ip", "-n", n.Name, "link", "set", "eth0", "up"},
	}
	steps = append(steps, n.bridgeSteps()...)
	steps = append(steps, []string{"ip", "route", "add", n.PodRange.String(), "via", n.NodeIP.String(), "dev", n.hostLink})
	return n.build(steps)
}

// build creates the namespace and runs steps in it and around it (its
// link, the bridge, routes), removing what it made if one fails.
func (n *Network) build(steps [][]string) (*Network, error) {
	if err := run("ip", "netns", "add", n.Name); err != nil {
		return nil, err
	}
	steps = append([][]string{{"ip", "-n", n.Name, "link", "set", "lo", "up"}}, steps...)
	if err := runAll(steps); err != nil {
		return nil, errors.Join(err, n.remove())
	}
	return n, nil
}

// bridgeSteps create the pods' bridge in the node's namespace, with
// forwarding between it and the veth in that namespace only.
func (n *Network) bridgeSteps() [][]string {
	return [][]string{
		{"ip", "-n", n.Name, "link", "add", BridgeName, "type", "bridge"},
		{"ip", "-n", n.Name, "addr", "add", netip.PrefixFrom(n.Bridge, n.PodRange.Bits()).String(), "dev", BridgeName},
		{"ip", "-n", n.Name, "link", "set", BridgeName, "up"},
		{"ip", "netns", "exec", n.Name, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
	}
}

// remove deletes the namespace and the host's end of the veth pair (with its route).
func (n *Network) remove() error {
	var errs []error
	if n.hostLink != "" && exec.Command("ip", "link", "show", n.hostLink).Run() == nil {
		errs = append(errs, run("ip", "link", "del", n.hostLink))
	}
	errs = append(errs, run("ip", "netns", "del", n.Name))
	return errors.Join(errs...)
}

// freeSubnet picks a random 10.x.0.0/16 that no host route or address overlaps.
func freeSubnet() (netip.Prefix, error) {
	out, err := exec.Command("ip", "-o", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("ip route: %w: %s", err, out)
	}
	var used []netip.Prefix
	for f := range strings.FieldsSeq(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil {
			used = append(used, p)
		} else if a, err := netip.ParseAddr(f); err == nil {
			used = append(used, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for range 50 {
		i, err := rand.Int(rand.Reader, big.NewInt(56))
		if err != nil {
			return netip.Prefix{}, err
		}
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + i.Int64()), 0, 0}), 16)
		if !overlapsAny(cand, used) {
			return cand, nil
		}
	}
	return netip.Prefix{}, errors.New("no free 10.200-255.0.0/16 subnet")
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Bits() > 0 && u.Overlaps(p) {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// run runs a setup command and returns its output in the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
