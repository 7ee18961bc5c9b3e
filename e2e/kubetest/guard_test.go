package kubetest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/reaper"
)

// abandonEnv makes this test binary start a control plane and wait to be
// killed, as a test process that go test's timeout ends.
const abandonEnv = "ALBDRAIN_KUBETEST_ABANDON"

func TestMain(m *testing.M) {
	if os.Getenv(abandonEnv) != "" {
		abandon()
		return
	}
	os.Exit(m.Run())
}

// abandon starts a control plane and prints its processes' IDs: the
// children of this process, which starts nothing else.
func abandon() {
	if _, _, err := Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var ids []string
	for _, pid := range reaper.Children(os.Getpid()) {
		ids = append(ids, strconv.Itoa(pid))
	}
	fmt.Println(strings.Join(ids, " "))
	select {}
}

// TestControlPlaneDiesWithItsTest kills a process that runs a control plane
// without stopping it, and checks that kube-apiserver and etcd die too: a
// timed-out test once left both running.
func TestControlPlaneDiesWithItsTest(t *testing.T) {
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
		t.Fatalf("no control plane started: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("printed %q", line)
		}
		pids = append(pids, pid)
	}
	// The reaper is a child too.
	if len(pids) != 3 {
		t.Fatalf("want etcd, kube-apiserver and the reaper, got processes %v", pids)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			if reaper.Alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for _, pid := range pids {
		deadline := time.Now().Add(time.Minute)
		for reaper.Alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d outlived its test by a minute", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
