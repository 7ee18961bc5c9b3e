package reaper

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

	"github.com/google/go-cmp/cmp"
)

// victimEnv makes this test binary act as a test process that starts
// daemons and then dies without stopping them. Its value is a file for the
// victim's commands to write.
const victimEnv = "ALBDRAIN_REAPER_VICTIM"

// TestMain runs the victim when asked to, before any test.
func TestMain(m *testing.M) {
	if log := os.Getenv(victimEnv); log != "" {
		victim(log)
		return
	}
	os.Exit(m.Run())
}

// victim starts three sleepers: a process group leader with a child of its
// own (as envtest starts etcd), a plain child (as the node's daemons run),
// and one it releases. It registers three commands that append to log,
// releasing the last. It prints the processes' IDs, the leader's child's
// and the reaper's, then waits to be killed.
func victim(log string) {
	leader := exec.Command("/bin/sh", "-c", "sleep 600 & echo $!; wait")
	leader.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := leader.StdoutPipe()
	must(err)
	must(leader.Start())
	grandchild, err := bufio.NewReader(out).ReadString('\n')
	must(err)
	plain := exec.Command("sleep", "600")
	must(plain.Start())
	released := exec.Command("sleep", "600")
	must(released.Start())
	for _, c := range []*exec.Cmd{leader, plain, released} {
		release, err := Guard(c.Process.Pid)
		must(err)
		if c == released {
			release()
		}
	}
	for _, word := range []string{"first", "second", "released"} {
		release, err := OnDeath("echo " + word + " >> " + Quote(log))
		must(err)
		if word == "released" {
			release()
		}
	}
	fmt.Println(leader.Process.Pid, strings.TrimSpace(grandchild), plain.Process.Pid, released.Process.Pid, reaperPID)
	select {}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

// TestUndoesWhatTheDeadTestLeft kills a test process harder than go test's
// timeout does (SIGKILL: no deferred code at all) and checks that what it
// guarded dies with it, the guarded group included, that its commands run
// newest first, and that what it released lives on or does not run.
func TestUndoesWhatTheDeadTestLeft(t *testing.T) {
	// A quote in the path checks Quote.
	log := filepath.Join(t.TempDir(), "it's run")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), victimEnv+"="+log)
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
		t.Fatalf("victim: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("victim printed %q", line)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 5 {
		t.Fatalf("victim printed %q", line)
	}
	released := pids[3]
	t.Cleanup(func() { _ = syscall.Kill(released, syscall.SIGKILL) })
	for _, pid := range pids {
		if !Alive(pid) {
			t.Fatalf("process %d is not running before the victim dies", pid)
		}
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	names := []string{"group leader", "its child", "plain child", "reaper"}
	for i, pid := range append(pids[:3:3], pids[4]) {
		deadline := time.Now().Add(time.Minute)
		for Alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("the %s (%d) outlived the test process by a minute", names[i], pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The reaper has exited, so it has done all it does.
	if !Alive(released) {
		t.Errorf("the released process (%d) was killed", released)
	}
	ran, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("no command ran: %v", err)
	}
	if diff := cmp.Diff("second\nfirst\n", string(ran)); diff != "" {
		t.Errorf("commands run at death, newest first, the released one not (-want +got):\n%s", diff)
	}
}

func TestOnDeathTakesOneLine(t *testing.T) {
	for _, command := range []string{"", "true\nrm -rf /", "true\r", "true\x00"} {
		if release, err := OnDeath(command); err == nil {
			release()
			t.Errorf("OnDeath(%q) was taken", command)
		}
	}
}
