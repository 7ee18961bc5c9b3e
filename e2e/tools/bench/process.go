package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/albdrain/albdrain/e2e/reaper"
)

// ManagerPackage is albdrain's manager binary.
const ManagerPackage = "github.com/albdrain/albdrain/cmd/albdrain"

// BuildManager builds albdrain's manager binary into dir with the go
// command goCmd and its defaults, which the tests and this program were
// built with, so the build cache has nearly all of it. The image's static, trimmed build would recompile every
// dependency (minutes on two cores) for a binary whose resident memory was
// measured within 3 MiB of this one's.
func BuildManager(ctx context.Context, goCmd, dir string) (string, error) {
	goBin, err := exec.LookPath(goCmd)
	if err != nil {
		return "", fmt.Errorf("building albdrain's manager needs the go command: %w", err)
	}
	out := filepath.Join(dir, "albdrain")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, ManagerPackage)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", ManagerPackage, err, b)
	}
	return out, nil
}

// memory is one reading of a process's memory.
type memory struct {
	// RSS and HWM are VmRSS and VmHWM (peak RSS) from /proc, in MiB.
	RSS, HWM float64
	// HeapInuse is the Go heap in use, in MiB, from the process's metrics.
	HeapInuse float64
}

// managerProcess is a running manager binary.
type managerProcess struct {
	cmd         *exec.Cmd
	done        chan error
	metricsAddr string
}

// startManager runs bin with args and env, logging to logPath, and returns
// once its /readyz answers 200 on probeAddr: the hold server listens only
// after the manager's cache has synced, so from then on the cache is full.
func startManager(ctx context.Context, bin string, args, env []string, logPath, probeAddr, metricsAddr string) (*managerProcess, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	wait, err := reaper.Start(cmd)
	if err != nil {
		logFile.Close()
		return nil, err
	}
	p := &managerProcess{cmd: cmd, done: make(chan error, 1), metricsAddr: metricsAddr}
	go func() {
		p.done <- wait()
		logFile.Close()
	}()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		if httpOK(ctx, "http://"+probeAddr+"/readyz") {
			return p, nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			return nil, fmt.Errorf("albdrain exited before it was ready (%v); log: %s", err, logPath)
		case <-ctx.Done():
			return nil, errors.Join(fmt.Errorf("albdrain not ready within 90s; log: %s", logPath), p.stop())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func httpOK(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// settle waits d for the start-up garbage to be collected and returned,
// then reads the process's memory.
func (p *managerProcess) settle(ctx context.Context, d time.Duration) (memory, error) {
	if !sleepUntil(ctx, time.Now().Add(d)) {
		return memory{}, ctx.Err()
	}
	var m memory
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return m, err
	}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(line, ":")
		kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch {
		case k != "VmRSS" && k != "VmHWM":
		case err != nil:
			return m, fmt.Errorf("/proc status %s: %w", k, err)
		case k == "VmRSS":
			m.RSS = kib / 1024
		default:
			m.HWM = kib / 1024
		}
	}
	m.HeapInuse, err = p.metric(ctx, "go_memstats_heap_inuse_bytes")
	m.HeapInuse /= 1 << 20
	return m, err
}

// metric reads one sample from the process's /metrics by its series as
// exposed, labels included, e.g. `x_total{op="a"}`.
func (p *managerProcess) metric(ctx context.Context, series string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.metricsAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in albdrain's metrics (%v)", series, sc.Err())
}

// stop ends the process as Kubernetes would: SIGTERM, then SIGKILL.
func (p *managerProcess) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.Exited() {
			return fmt.Errorf("albdrain: %w", err)
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("albdrain did not stop within 15s of SIGTERM")
	}
}
