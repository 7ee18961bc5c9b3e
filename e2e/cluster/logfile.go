package cluster

import (
	"log/slog"
	"os"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// LogToFile sends controller-runtime's and klog's logs, and the returned
// logger's, to the file at path: a local cluster is too chatty for a
// terminal or a test's output. Close the file when done.
func LogToFile(path string) (*slog.Logger, *os.File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(f, nil))
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	klog.SetSlogLogger(log)
	return log, f, nil
}
