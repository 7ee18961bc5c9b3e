package node_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// abandon prints the node's name and folder, then the IDs of this
// process's children (etcd, the apiserver, the node's daemons, the reaper).
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
	fields := []string{n.Name, n.Dir}
	for _, pid := range reaper.Children(os.Getpid()) {
		fields = append(fields, strconv.Itoa(pid))
	}
	fmt.Println(strings.Join(fields, " "))
	select {}
}

// TestKilledTestLeavesTheMachineAsFound kills a test process that runs a
// node and its control plane, without a chance to stop them, and checks
// that the machine is as before: no process of theirs, no namespace, host
// link, mount, cgroup or folder of the node's.
func TestKilledTestLeavesTheMachineAsFound(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), abandonEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the node did not start: %v", err)
	}
	f := strings.Fields(line)
	if len(f) < 2+4 {
		t.Fatalf("want the node's name, folder, and etcd, the apiserver, the node's daemons and the reaper; got %q", line)
	}
	name, dir := f[0], f[1]
	var pids []int
	for _, s := range f[2:] {
		pid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("printed %q", line)
		}
		pids = append(pids, pid)
	}
	paths := append([]string{"/run/netns/" + name, dir}, cgroupRoots(t, name)...)
	for _, path := range paths {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("before the kill: %v", err)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// The reaper is among them: once all have exited, it has done its work.
	for _, pid := range pids {
		deadline := time.Now().Add(2 * time.Minute)
		for reaper.Alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d outlived its test by two minutes", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, path := range paths {
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

// cgroupRoots are where the node's cgroup root is in each hierarchy.
func cgroupRoots(t *testing.T, name string) []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{filepath.Join("/sys/fs/cgroup", name)}
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name(), name))
		}
	}
	return out
}
