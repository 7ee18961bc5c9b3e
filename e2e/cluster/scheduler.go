package cluster

import (
	"strconv"

	"github.com/albdrain/albdrain/e2e/kubetest"
)

// StartScheduler runs the kube-scheduler built by `make node-assets`
// (KUBEBUILDER_ASSETS) against env with its default profile, so pods
// created without a nodeName land on the real nodes as in a cluster: spread
// by their topology constraints, kept off cordoned nodes. dir receives its
// kubeconfig and log. It returns once the process reports healthy.
func StartScheduler(env *kubetest.Env, dir string) (*Daemon, error) {
	d, err := startDaemon(env, dir, "kube-scheduler", func(kubeconfig, certDir string, port int) []string {
		return []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + certDir,
			"--kube-api-qps=200",
			"--kube-api-burst=400",
			// Each binding in the log, for post-mortems.
			"-v=2",
		}
	})
	if err != nil {
		return nil, err
	}
	// Without leader election it ends "finished without leader elect", 1.
	d.stopCode = 1
	return d, nil
}
