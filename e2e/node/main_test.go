package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/albdrain/albdrain/e2e/cluster"
)

// TestMain sends the in-process components' logs (albdrain's manager, the
// load balancer controller's stand-in) to a file kept only when a test fails.
func TestMain(m *testing.M) {
	if os.Getenv(abandonEnv) != "" {
		os.Exit(abandon())
	}
	dir, err := os.MkdirTemp("", "albdrain-node-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	path := filepath.Join(dir, "components.log")
	_, f, err := cluster.LogToFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	f.Close()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "components' log:", path)
	} else {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}
