package node_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/node"
	"github.com/albdrain/albdrain/e2e/reaper"
)

// abandonEnv makes this test binary start a control plane and a node, print
// what they made, and wait to be killed, as a test that go test's timeout
// ends does.
const abandonEnv = "ALBDRAIN_NODE_ABANDON"

// abandon starts a control plane and a node and abandons them, printing
// the node's name and folder.
func abandon() int {
	env, _, err := kubetest.Run()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n, err := node.Run(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// What the test checks is gone must be there first.
	roots, err := node.CgroupRoots(n.Name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for _, path := range append([]string{"/run/netns/" + n.Name, n.Dir}, roots...) {
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	reaper.Abandoned(n.Name, n.Dir)
	return 0
}

// TestKilledTestLeavesTheMachineAsFound kills a test process that runs a
// node and its control plane, without a chance to stop them, and checks
// that the machine is as before: no process of theirs, no namespace, host
// link, mount, cgroup or folder of the node's.
func TestKilledTestLeavesTheMachineAsFound(t *testing.T) {
	words, pids := reaper.Abandon(t, abandonEnv)
	// etcd, the apiserver, containerd, the kubelet and the reaper.
	if len(words) != 2 || len(pids) < 5 {
		t.Fatalf("want the node's name and folder, and etcd, the apiserver, the node's daemons and the reaper; got %q, %v", words, pids)
	}
	name, dir := words[0], words[1]
	// The reaper is among them: once it has exited, it has done its work.
	reaper.AwaitExit(t, pids, 2*time.Minute)
	roots, err := node.CgroupRoots(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range append([]string{"/run/netns/" + name, dir}, roots...) {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s is left (%v)", path, err)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), dir) {
		t.Errorf("mounts under %s are left", dir)
	}
	links, err := exec.Command("ip", "-o", "link").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v: %s", err, links)
	}
	// The host's end of the veth pair is named for the namespace.
	if suffix := strings.TrimPrefix(name, "albdrain-"); strings.Contains(string(links), suffix) {
		t.Errorf("a host link of node %s is left", name)
	}
}
