package bench

import (
	"context"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/ports"
	"github.com/albdrain/albdrain/e2e/testcert"
)

// unusedELBv2 is the ELBv2 endpoint of a manager that holds no pod, so
// never calls it.
const unusedELBv2 = "http://127.0.0.1:9"

// managerSetup runs albdrain's manager binary against a test apiserver as
// its Deployment would run it: webhook over TLS, hold endpoint, metrics and
// probes, on loopback ports.
type managerSetup struct {
	bin, dir   string
	kubeconfig string
	// args are the manager's flags as the chart renders them.
	args []string
	// certDir and webhookPort serve the webhook: envtest's, where the
	// apiserver calls it, or a self-signed certificate on a free port.
	certDir     string
	webhookPort int
}

// newManagerSetup renders the chart for the binary bin, installs its RBAC
// and provisions a kubeconfig in dir for its ServiceAccount, so the manager
// runs with the chart's flags and permissions; and the webhook's serving
// certificate: envtest's when env has albdrain's webhook registered, else a
// self-signed one nobody calls.
func newManagerSetup(ctx context.Context, env *kubetest.Env, bin, dir string) (*managerSetup, error) {
	chart, err := helmchart.Render(cluster.Namespace, map[string]any{
		"image": map[string]any{"repository": "albdrain", "tag": "bench"},
		"aws":   map[string]any{"region": "us-east-1", "endpointURL": unusedELBv2},
		// Certificates come from envtest or are written below.
		"certificates": map[string]any{"provider": "cert-manager"},
	})
	if err != nil {
		return nil, err
	}
	if err := chart.InstallRBAC(ctx, env.Client, cluster.Namespace); err != nil {
		return nil, err
	}
	args, err := chart.ManagerArgs()
	if err != nil {
		return nil, err
	}
	user, err := env.Environment.AddUser(envtest.User{Name: helmchart.ServiceAccountUser(cluster.Namespace),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + cluster.Namespace}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	m := &managerSetup{bin: bin, dir: dir, kubeconfig: filepath.Join(dir, "albdrain.kubeconfig"), args: args}
	if err := os.WriteFile(m.kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	if wio := env.Environment.WebhookInstallOptions; len(wio.MutatingWebhooks) > 0 {
		m.certDir, m.webhookPort = wio.LocalServingCertDir, wio.LocalServingPort
		return m, nil
	}
	m.certDir = filepath.Join(dir, "albdrain-certs")
	if m.webhookPort, err = ports.Reserve(); err != nil {
		return nil, err
	}
	// The manager's webhook server will not start without a certificate,
	// though nothing calls it while memory is measured.
	return m, testcert.WriteServingCert(m.certDir, net.IPv4(127, 0, 0, 1))
}

// start runs the manager, logging to a file named after name, and returns
// once it is ready.
func (m *managerSetup) start(ctx context.Context, name string) (*managerProcess, error) {
	return m.startWith(ctx, name, nil, nil)
}

// startWith is start with more of the chart's flags replaced (local, which
// wins over start's own) and more environment variables.
func (m *managerSetup) startWith(ctx context.Context, name string, local map[string]string, extraEnv []string) (*managerProcess, error) {
	addrs := make([]string, 3)
	for i := range addrs {
		p, err := ports.Reserve()
		if err != nil {
			return nil, err
		}
		addrs[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	probe, metrics, hold := addrs[0], addrs[1], addrs[2]
	args, err := withLocal(m.args, map[string]string{
		"health-probe-bind-address": probe,
		"metrics-bind-address":      metrics,
		"webhook-port":              strconv.Itoa(m.webhookPort),
		"webhook-cert-dir":          m.certDir,
		"hold-bind-address":         hold,
		"hold-cert-dir":             "",
		"watcher-url":               "http://" + hold,
		"watcher-ca-file":           "",
		// No Service routes to it; stop at once.
		"shutdown-service": "",
	}, local)
	if err != nil {
		return nil, err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "KUBECONFIG=" + m.kubeconfig,
		// The credentials keep the SDK from looking further for any (instance
		// metadata is off loopback).
		"AWS_ACCESS_KEY_ID=AKIDBENCH", "AWS_SECRET_ACCESS_KEY=bench", "AWS_EC2_METADATA_DISABLED=true",
	}
	env = append(env, extraEnv...)
	return startManager(ctx, m.bin, args, env, filepath.Join(m.dir, "albdrain-"+name+".log"), probe, metrics)
}

// withLocal is helmchart.WithLocal of base's flags overridden by over's.
func withLocal(args []string, base, over map[string]string) ([]string, error) {
	local := maps.Clone(base)
	maps.Copy(local, over)
	return helmchart.WithLocal(args, local)
}
