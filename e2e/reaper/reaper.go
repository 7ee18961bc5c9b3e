// Package reaper undoes what a test process set up on the machine when that
// process dies without undoing it itself.
//
// A test's cleanups run only when it ends normally. When go test's timeout
// fires, a test panics, or the process is killed, kube-apiserver, etcd and
// the real node's daemons outlive it, with the node's namespaces, mounts and
// cgroups, and the machine is no longer as the test found it. The kernel's
// parent-death signal is no cure in Go: it follows the thread that started
// the child, and the runtime ends threads (those a goroutine locked to enter
// a network namespace).
//
// So the first registration starts one small shell process, in a process
// group of its own so that a terminal's ^C reaches it only through its
// pipe. It reads shell commands from a pipe whose only writer is this
// process. The pipe closes when this process dies, however it dies; the
// shell then runs every command still registered, newest first, as
// deferred calls run.
package reaper

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// script keeps command i in variable e_i, and runs the ones left from the
// highest i down when its input ends.
const script = `set -f
n=0
while read -r op id cmd; do
  case $op in
    add) eval "e_$id=\$cmd"; n=$id ;;
    del) unset "e_$id" ;;
  esac
done
while [ "$n" -gt 0 ]; do
  eval "cmd=\${e_$n-}"
  [ -n "$cmd" ] && (eval "$cmd") >/dev/null 2>&1 </dev/null
  n=$((n-1))
done
exit 0`

var (
	mu   sync.Mutex
	pipe io.WriteCloser
	last int
)

// Guard has pid killed, with the process group it leads if any (envtest
// starts its binaries as group leaders), should this process die before
// calling the returned release. Call release once the process is known to
// have exited, so that a later process given the same ID is never killed.
func Guard(pid int) (release func(), err error) {
	// dash takes a negative (group) ID only after a numeric signal.
	return OnDeath(fmt.Sprintf("kill -9 -%d; kill -9 %d", pid, pid))
}

// OnDeath has the shell run command, one line, should this process die
// before calling the returned release. Commands run newest first, each in a
// subshell with its output discarded, so one that fails stops none of the
// others.
func OnDeath(command string) (release func(), err error) {
	if command == "" || strings.ContainsAny(command, "\n\r\x00") {
		return nil, fmt.Errorf("reaper: a command is one non-empty line: %q", command)
	}
	mu.Lock()
	defer mu.Unlock()
	if pipe == nil {
		if err := start(); err != nil {
			return nil, err
		}
	}
	last++
	id := last
	if _, err := fmt.Fprintf(pipe, "add %d %s\n", id, command); err != nil {
		return nil, fmt.Errorf("reaper: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			// A write fails only when the reaper has died, and then
			// nothing remembers the command.
			_, _ = fmt.Fprintf(pipe, "del %d\n", id)
		})
	}, nil
}

// Quote makes s one word of a shell command.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// start runs the reaper. Its stdin is the only inherited end of the pipe;
// Go opens every other descriptor close-on-exec, so no other child holds
// the writer open past this process's death.
func start() error {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return errors.Join(fmt.Errorf("reaper: start: %w", err), w.Close())
	}
	// Not waited for: it exits only after this process has.
	pipe = w
	return nil
}

// Alive reports whether pid runs. A zombie has exited, whether or not its
// new parent has reaped it yet.
func Alive(pid int) bool {
	state, _, ok := stat(pid)
	return ok && state != "Z"
}

// Children lists the running children of process parent.
func Children(parent int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := stat(pid); ok && ppid == parent && state != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

// stat reads a process's state and parent from /proc.
func stat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// They follow the parenthesised name, which may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, err == nil
}

// Start starts cmd guarded (see Guard). Call the returned wait in place of
// cmd.Wait: it releases the guard once the process has exited.
func Start(cmd *exec.Cmd) (wait func() error, err error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	release, err := Guard(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, errors.Join(err, cmd.Wait())
	}
	return func() error {
		defer release()
		return cmd.Wait()
	}, nil
}
