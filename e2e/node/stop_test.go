package node_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/node"
)

// TestStopLeavesNothing checks the node's promise to leave the machine as it
// found it: kube-proxy's rules live in the node's namespace only, and after
// Stop, no mount, namespace, link, route, cgroup, process or file of the
// node's remains.
func TestStopLeavesNothing(t *testing.T) {
	hostRules := nftRuleset(t)
	env := kubetest.Start(t, kubetest.WithInClusterClients())
	n := node.Start(t, env, node.WithServices())
	if got := nftRuleset(t); got != hostRules {
		t.Errorf("the host's nftables ruleset changed while the node ran:\n%s", got)
	}
	nodeRules := nftRuleset(t, "ip", "netns", "exec", n.Net.Name)
	if !strings.Contains(nodeRules, "table ip kube-proxy") {
		t.Errorf("no kube-proxy table in the node's namespace:\n%s", nodeRules)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mountinfo), n.Dir) {
		t.Errorf("mounts under %s remain", n.Dir)
	}
	if _, err := os.Stat(n.Dir); !os.IsNotExist(err) {
		t.Errorf("%s remains (stat: %v)", n.Dir, err)
	}
	if _, err := os.Stat("/run/netns/" + n.Net.Name); !os.IsNotExist(err) {
		t.Errorf("network namespace %s remains (stat: %v)", n.Net.Name, err)
	}
	routes, err := exec.Command("ip", "route").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(routes), n.Net.PodRange.String()) {
		t.Errorf("host route to %s remains:\n%s", n.Net.PodRange, routes)
	}
	for _, m := range []string{"memory", "cpu", "pids", "unified"} {
		if _, err := os.Stat("/sys/fs/cgroup/" + m + "/" + n.Net.Name); err == nil {
			t.Errorf("cgroup %s/%s remains", m, n.Net.Name)
		}
	}
	if got := nftRuleset(t); got != hostRules {
		t.Errorf("the host's nftables ruleset changed:\n%s", got)
	}
	for _, p := range []string{"/var/lib/kubelet/device-plugins", "/var/log/containers", "/var/lib/cni/results"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists on the host", p)
		}
	}
}

// nftRuleset lists the nftables ruleset, of the host or, with a prefix such
// as ip netns exec NAME, of a namespace.
func nftRuleset(t *testing.T, prefix ...string) string {
	t.Helper()
	argv := append(prefix, "nft", "list", "ruleset")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v: %s", argv, err, out)
	}
	return string(out)
}

// TestRouterLeavesNothing checks the same promise for two nodes behind a
// router: IP forwarding is switched on in the router's and the nodes'
// namespaces only, and after the nodes stop and the router goes, no
// namespace, link or route of theirs remains.
func TestRouterLeavesNothing(t *testing.T) {
	hostForward := readSysctl(t, "net/ipv4/ip_forward")
	hostRules := nftRuleset(t)
	env := kubetest.Start(t, kubetest.WithInClusterClients())
	r := node.NewRouter(t)
	a := node.Start(t, env, node.OnRouter(r), node.WithServices())
	b := node.Start(t, env, node.OnRouter(r), node.WithServices())
	if a.Net.PodRange.Overlaps(b.Net.PodRange) || !r.Pods.Contains(a.Net.PodRange.Addr()) || !r.Pods.Contains(b.Net.PodRange.Addr()) {
		t.Errorf("pod ranges %s and %s, want apart and within %s", a.Net.PodRange, b.Net.PodRange, r.Pods)
	}
	if got := readSysctl(t, "net/ipv4/ip_forward"); got != hostForward {
		t.Errorf("the host's ip_forward changed from %s to %s", hostForward, got)
	}
	out, err := exec.Command("ip", "netns", "exec", r.Name, "cat", "/proc/sys/net/ipv4/ip_forward").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Errorf("forwarding in the router's namespace: %q (%v), want 1", out, err)
	}
	if got := nftRuleset(t); got != hostRules {
		t.Errorf("the host's nftables ruleset changed while the nodes ran:\n%s", got)
	}
	for _, n := range []*node.Node{b, a} {
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{r.Name, a.Net.Name, b.Net.Name} {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("network namespace %s remains (stat: %v)", ns, err)
		}
	}
	routes, err := exec.Command("ip", "-o", "addr").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	more, err := exec.Command("ip", "route").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimSuffix(r.Subnet.Addr().String(), "0.0")
	if strings.Contains(string(routes)+string(more), prefix) {
		t.Errorf("host addresses or routes in %s remain:\n%s%s", r.Subnet, routes, more)
	}
	if got := readSysctl(t, "net/ipv4/ip_forward"); got != hostForward {
		t.Errorf("the host's ip_forward changed from %s to %s", hostForward, got)
	}
}

// readSysctl reads a host sysctl under /proc/sys.
func readSysctl(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
