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
// found it: after Stop, no mount, namespace, link, route, cgroup, process or
// file of the node's remains.
func TestStopLeavesNothing(t *testing.T) {
	env := kubetest.Start(t)
	n := node.Start(t, env)
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
	for _, p := range []string{"/var/lib/kubelet/device-plugins", "/var/log/containers", "/var/lib/cni/results"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists on the host", p)
		}
	}
}
