package cluster

import (
	"strconv"
	"strings"

	"github.com/albdrain/albdrain/e2e/kubetest"
)

// Controllers are the kube-controller-manager controllers the scenarios rely
// on: Deployments roll out through ReplicaSets, PodDisruptionBudgets gate
// evictions, the garbage collector removes what replaced ReplicaSets
// leave behind, and the ServiceAccount controller creates each namespace's
// default ServiceAccount, whose tokens the kubelet projects into pods.
//
// The EndpointSlice controller is left out: the apiserver refuses loopback
// addresses in EndpointSlices, and every pod here has one, so it could only
// fail and retry. The load balancer controller's stand-in applies its rules
// to the pods itself (see package lbc).
var Controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"disruption-controller",
	"serviceaccount-controller",
	"garbage-collector-controller",
}

// EndpointSliceController is the controller a real node's tests add to
// Controllers: their pods have addresses the apiserver accepts in
// EndpointSlices, so the load balancer controller's stand-in can read them
// as the real controller does.
const EndpointSliceController = "endpointslice-controller"

// StartControllerManager runs the kube-controller-manager found next to the
// apiserver in KUBEBUILDER_ASSETS against env, as a cluster administrator,
// with the Controllers enabled, or controllers when given. dir receives its
// kubeconfig and log. It returns once the process reports healthy.
func StartControllerManager(env *kubetest.Env, dir string, controllers ...string) (*Daemon, error) {
	return StartControllerManagerWithFlags(env, dir, nil, controllers...)
}

// StartControllerManagerWithFlags is StartControllerManager with flags
// added to the process's command line.
func StartControllerManagerWithFlags(env *kubetest.Env, dir string, flags []string, controllers ...string) (*Daemon, error) {
	if len(controllers) == 0 {
		controllers = Controllers
	}
	return startDaemon(env, dir, "kube-controller-manager", func(kubeconfig, certDir string, port int) []string {
		return append([]string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--controllers=" + strings.Join(controllers, ","),
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + certDir,
			// The scenarios create pods in bursts; the default 20 QPS would add
			// client-side throttling delays that no real cluster has at this size.
			"--kube-api-qps=200",
			"--kube-api-burst=400",
		}, flags...)
	})
}
