package node

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/albdrain/albdrain/e2e/reaper"
)

// The shell forms of Stop's undo steps, which the reaper runs should the
// test process die before Stop (a timeout, a panic, a kill). It runs them
// after killing the node's daemons, which were registered later.

// onDeath registers command with the reaper until Stop succeeds.
func (n *Node) onDeath(command string) error {
	release, err := reaper.OnDeath(command)
	if err != nil {
		return err
	}
	n.reaped = append(n.reaped, release)
	return nil
}

// removeDirCommand detaches every mount at or below dir, deepest first, as
// unmountUnder does, then removes dir, but only once no mount is left
// under it: rm would follow a bind mount that would not come off into
// what it shows, and --one-file-system alone tells no bind mount from the
// same file system.
func removeDirCommand(dir string) string {
	q := reaper.Quote(dir)
	mounts := fmt.Sprintf(`awk -v d=%s '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo`, q)
	return fmt.Sprintf(`%s | sort -r | xargs -r -n1 umount -l; [ -z "$(%s)" ] && rm -rf --one-file-system %s`, mounts, mounts, q)
}

// removeNetnsCommand kills what still runs in the namespace (containerd's
// shims, which outlive containerd), then deletes the host's end of its
// veth, if any, and the namespace, as the Network's and the Router's
// remove do.
func removeNetnsCommand(name, hostLink string) string {
	q := reaper.Quote(name)
	cmd := "ip netns pids " + q + " | xargs -r kill -9; "
	if hostLink != "" {
		cmd += "ip link del " + reaper.Quote(hostLink) + "; "
	}
	return cmd + "ip netns del " + q
}

// removeCgroupRootCommand kills the processes in the cgroup root's tree
// (the pods' containers) and removes it, deepest first, retrying while
// the killed processes exit, as removeCgroupRoot does.
func removeCgroupRootCommand(name string) (string, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return "", err
	}
	var cmds []string
	for _, m := range mounts {
		r := reaper.Quote(filepath.Join(m, name))
		cmds = append(cmds, fmt.Sprintf(`find %s -name cgroup.procs -exec cat {} + | xargs -r kill -9; i=0; while [ -d %s ] && [ $i -lt 100 ]; do find %s -depth -type d -exec rmdir {} +; sleep 0.1; i=$((i+1)); done`, r, r, r))
	}
	return strings.Join(cmds, "; "), nil
}
