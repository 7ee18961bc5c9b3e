package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// RunTests is a TestMain body for a package whose tests share one local
// cluster: it starts the cluster with timings, hands it to use, runs the
// tests and stops it. The cluster's logs go to a file in a temporary
// directory, kept (and named on stderr) when a test fails.
func RunTests(m *testing.M, prefix string, timings Timings, use func(*Cluster)) (code int) {
	ws, err := OpenWorkspace(strings.Trim(strings.TrimPrefix(prefix, "albdrain-"), "-"), io.Discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if code != 0 {
			ws.Close(fmt.Errorf("exit code %d", code))
			return
		}
		ws.Close(nil)
	}()
	c, err := ws.StartCluster(context.Background(), "go", timings)
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
}
