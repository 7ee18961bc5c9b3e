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
