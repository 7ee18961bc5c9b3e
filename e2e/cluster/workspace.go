package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Workspace is what a command running a local cluster (the demo, the
// benchmarks) sets up first: a temporary directory for the components'
// files, kept when the command fails, a log file the components write to,
// and timestamped progress lines.
type Workspace struct {
	Dir string
	Log *slog.Logger

	name    string
	out     io.Writer
	start   time.Time
	logFile *os.File
}

// OpenWorkspace checks that the control plane is built and creates the
// directory and log, both named after the command (name); out receives the
// progress lines.
func OpenWorkspace(name string, out io.Writer) (*Workspace, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run through make (make test, demo or bench), which builds the control plane first")
	}
	dir, err := os.MkdirTemp("", "albdrain-"+name+"-")
	if err != nil {
		return nil, err
	}
	log, logFile, err := LogToFile(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return &Workspace{Dir: dir, Log: log, name: name, out: out, start: time.Now(), logFile: logFile}, nil
}

// Say prints a progress line, stamped with the time since the start.
func (w *Workspace) Say(format string, args ...any) {
	fmt.Fprintf(w.out, "[%5.1fs] %s\n", time.Since(w.start).Seconds(), fmt.Sprintf(format, args...))
}

// StartCluster builds albdrain's in-pod helper with goCmd and starts the
// local cluster with timings; stop it before closing the workspace.
func (w *Workspace) StartCluster(ctx context.Context, goCmd string, t Timings) (*Cluster, error) {
	w.Say("building albdrain's in-pod helper (albdrain-hold)")
	helper, err := BuildHelper(ctx, goCmd, w.Dir)
	if err != nil {
		return nil, err
	}
	w.Say("starting kube-apiserver, etcd, kube-controller-manager, the ALB emulator, the kubelet and load balancer controller stand-ins, and albdrain")
	return Start(ctx, Options{Dir: w.Dir, HelperBinary: helper, Timings: t, Log: w.Log})
}

// Close closes the log and removes the directory, unless the command
// failed (err): then it is kept for the logs, and named on stderr.
func (w *Workspace) Close(err error) {
	w.logFile.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "logs kept in %s\n", w.Dir)
		return
	}
	os.RemoveAll(w.Dir)
}
