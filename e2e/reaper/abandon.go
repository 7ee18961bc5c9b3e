package reaper

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Abandoned ends the set-up half of a test of what a dead test process
// leaves: it prints words and then the IDs of this process's children,
// which must die with it, on one line, and waits to be killed. Call it
// from TestMain when the variable given to Abandon is set.
func Abandoned(words ...string) {
	line := append(words, "--")
	for _, pid := range Children(os.Getpid()) {
		line = append(line, strconv.Itoa(pid))
	}
	fmt.Println(strings.Join(line, " "))
	select {}
}

// Abandon runs this test binary again with env set, so that its TestMain
// sets up what the test is about and calls Abandoned. Once that process
// has printed its line, Abandon kills it with SIGKILL, which lets no code
// of it run (harder than go test's timeout, which panics), and returns its
// words and its children's IDs.
func Abandon(t testing.TB, env string) (words []string, pids []int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if err != nil {
		t.Fatalf("the abandoned test process printed nothing: %v", err)
	}
	f := strings.Fields(line)
	i := slices.Index(f, "--")
	if i < 0 {
		t.Fatalf("the abandoned test process printed %q", line)
	}
	for _, s := range f[i+1:] {
		pid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("the abandoned test process printed %q", line)
		}
		pids = append(pids, pid)
	}
	return f[:i], pids
}

// AwaitExit waits until none of pids runs, and fails t if one still does
// after within. Survivors are killed at cleanup, so a failure leaves
// nothing behind either.
func AwaitExit(t testing.TB, pids []int, within time.Duration) {
	t.Helper()
	t.Cleanup(func() {
		for _, pid := range pids {
			if Alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	deadline := time.Now().Add(within)
	for _, pid := range pids {
		for Alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d outlived its test process by %s", pid, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
