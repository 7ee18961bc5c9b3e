package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// RunTests is a TestMain body for a package whose tests share one local
// cluster: it starts the cluster with timings, hands it to use, runs the
// tests and stops it. The cluster's logs go to a file in a temporary
// directory, kept (and named on stderr) when a test fails.
func RunTests(m *testing.M, prefix string, timings Timings, use func(*Cluster)) int {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	log, logFile, err := LogToFile(filepath.Join(dir, "cluster.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logFile.Close()

	code := func() int {
		ctx := context.Background()
		helper, err := BuildHelper(ctx, "go", dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		c, err := Start(ctx, Options{Dir: dir, HelperBinary: helper, Timings: timings, Log: log})
		if err != nil {
			fmt.Fprintln(os.Stderr, "start the local cluster:", err)
			return 1
		}
		use(c)
		defer func() {
			if err := c.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "stop the local cluster:", err)
			}
		}()
		return m.Run()
	}()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "logs of the local cluster kept in", dir)
		return code
	}
	os.RemoveAll(dir)
	return 0
}
