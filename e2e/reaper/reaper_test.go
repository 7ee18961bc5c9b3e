package reaper

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	if os.Getenv(victimEnv) != "" {
		victim()
		return
	}
	os.Exit(m.Run())
}

// logEnv names the file the victim's commands append to.
const logEnv = "ALBDRAIN_REAPER_LOG"

// victim starts three sleepers: a process group leader with a child of its
// own (as envtest starts etcd), a plain child (as the node's daemons run),
// and one it releases. It registers three commands that append to the
// log, releasing the last, and abandons them all.
func victim() {
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
		release, err := OnDeath("echo " + word + " >> " + Quote(os.Getenv(logEnv)))
		must(err)
		if word == "released" {
			release()
		}
	}
	Abandoned(strings.TrimSpace(grandchild), strconv.Itoa(released.Process.Pid))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

// TestUndoesWhatTheDeadTestLeft checks that what a killed test process
// guarded dies with it, the guarded group included, that its commands run
// newest first, and that what it released lives on or does not run.
func TestUndoesWhatTheDeadTestLeft(t *testing.T) {
	// A quote in the path checks Quote.
	log := filepath.Join(t.TempDir(), "it's run")
	t.Setenv(logEnv, log)
	words, children := Abandon(t, victimEnv)
	if len(words) != 2 {
		t.Fatalf("victim printed %q", words)
	}
	grandchild, err := strconv.Atoi(words[0])
	if err != nil {
		t.Fatal(err)
	}
	released, err := strconv.Atoi(words[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(released, syscall.SIGKILL) })
	i := slices.Index(children, released)
	// The leader, the plain child, the released one and the reaper.
	if i < 0 || len(children) != 4 {
		t.Fatalf("victim's children: %v, of which %d released", children, released)
	}
	// The reaper is among them: once it has exited, it has done all it does.
	AwaitExit(t, append(slices.Delete(children, i, i+1), grandchild), time.Minute)
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
