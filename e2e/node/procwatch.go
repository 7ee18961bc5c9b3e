package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClockTick is the resolution of process start times in /proc (USER_HZ 100).
const ClockTick = 10 * time.Millisecond

// Proc is a process seen in the node's pods.
type Proc struct {
	PID     int
	Cmdline string
	// Start is when the kernel started it, to ClockTick.
	Start time.Time
}

// ProcWatch records the pod processes whose command line starts with a prefix.
type ProcWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	seen   map[int]Proc
}

// WatchProcesses scans /proc every few milliseconds for processes in the
// node's pod cgroups whose NUL-separated command line starts with prefix,
// until Stop.
func WatchProcesses(ctx context.Context, n *Node, prefix string) *ProcWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &ProcWatch{cancel: cancel, done: make(chan struct{}), seen: map[int]Proc{}}
	boot := bootTime()
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			w.scan(n.cgroupRoot, prefix, boot)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *ProcWatch) scan(cgroupRoot, prefix string, boot time.Time) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		w.mu.Lock()
		_, known := w.seen[pid]
		w.mu.Unlock()
		if known {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.HasPrefix(cmdline, []byte(prefix)) {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil || !strings.Contains(string(cg), "/"+cgroupRoot+"/") {
			continue
		}
		start, err := startTime(pid, boot)
		if err != nil {
			continue
		}
		w.mu.Lock()
		w.seen[pid] = Proc{PID: pid, Cmdline: strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "), Start: start}
		w.mu.Unlock()
	}
}

// Stop ends the watch and returns the processes seen.
func (w *ProcWatch) Stop() []Proc {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Proc
	for _, p := range w.seen {
		out = append(out, p)
	}
	return out
}

// bootTime is when the machine booted, from /proc/uptime (the clock that
// process start times count from), to its 10 ms resolution.
func bootTime() time.Time {
	now := time.Now()
	data, _ := os.ReadFile("/proc/uptime")
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return time.Time{}
	}
	up, _ := strconv.ParseFloat(fields[0], 64)
	return now.Add(-time.Duration(up * float64(time.Second)))
}

// startTime reads a process's start (field 22 of /proc/PID/stat, in clock
// ticks since boot).
func startTime(pid int, boot time.Time) (time.Time, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, err
	}
	// The command name may hold spaces: fields count from after its ")".
	rest := string(data[bytes.LastIndexByte(data, ')')+2:])
	fields := strings.Fields(rest)
	if len(fields) < 20 {
		return time.Time{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return boot.Add(time.Duration(ticks) * ClockTick), nil
}

// PodLogsDir is where the runtime writes the pods' container logs.
func (n *Node) PodLogsDir() string { return filepath.Join(n.Dir, "pod-logs") }
