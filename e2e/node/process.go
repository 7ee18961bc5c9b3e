package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/albdrain/albdrain/e2e/reaper"
)

// process is one of the node's daemons, run in the node's network namespace
// and in a mount namespace of its own.
type process struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
}

// startInNode runs argv in the node's network namespace and a new mount
// namespace that keeps the shared test folder shared (propagation
// unchanged: the host's "/" is private, the folder is shared). setup runs
// first in that mount namespace, as shell commands, to hide host paths the
// daemon would write to behind its own mounts.
func (n *Node) startInNode(name string, setup []string, argv ...string) (*process, error) {
	logPath := n.logPath(name)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	script := strings.Join(append(append([]string{"set -e"}, setup...), `exec "$@"`), "\n")
	args := append([]string{"--net=/run/netns/" + n.Net.Name, "--", "unshare", "--mount", "--propagation", "unchanged", "--",
		"/bin/sh", "-c", script, name}, argv...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "PATH="+n.assets.containerdDir+":/usr/sbin:/usr/bin:/sbin:/bin")
	wait, err := reaper.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() {
		p.waitErr = wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports an early exit of the process, with its log's path.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v (log: %s)", p.name, p.waitErr, p.logPath)
	default:
		return nil
	}
}

// stop sends SIGTERM (nsenter and unshare exec, so the daemon gets it
// directly) and SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	var exit *exec.ExitError
	if p.waitErr == nil || errors.As(p.waitErr, &exit) {
		return nil
	}
	return p.waitErr
}

// killShims kills the runc shims that containerd started for this node:
// processes running shim from the node's network namespace. They outlive
// containerd by design, so stopping containerd alone leaves them behind.
func killShims(shim, netns string) error {
	var want syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+netns, &want); err != nil {
		return fmt.Errorf("node namespace: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || exe != shim {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return nil
}
