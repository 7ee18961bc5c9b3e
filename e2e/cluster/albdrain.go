package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/ports"
	"github.com/albdrain/albdrain/internal/contract"
)

// Namespace is where the harness installs albdrain's chart.
const Namespace = "albdrain-system"

// WebhookConfiguration is albdrain's registration as its chart renders it
// with default values. envtest points it at the local webhook server.
func WebhookConfiguration() (*admissionv1.MutatingWebhookConfiguration, error) {
	m, err := helmchart.Render(Namespace, map[string]any{})
	if err != nil {
		return nil, err
	}
	return m.WebhookConfiguration()
}

// ChartValues configure the chart for the harness: its timings, and the
// emulator as ELBv2. Certificates come from envtest, as cert-manager's would
// come from outside the manager.
func ChartValues(t Timings, region, elbv2URL, helperImage string) map[string]any {
	return map[string]any{
		"image": map[string]any{"repository": "albdrain", "tag": "e2e"},
		"hold": map[string]any{
			"mode":           "wait",
			"maxHold":        t.MaxHold.String(),
			"fallbackSleep":  t.Fallback.String(),
			"quietPeriod":    t.QuietPeriod.String(),
			"shutdownBudget": t.ShutdownBudget.String(),
			"helperImage":    helperImage,
		},
		"watcher":      map[string]any{"pollInterval": t.WatcherPoll.String(), "holdMargin": t.HoldMargin.String()},
		"aws":          map[string]any{"region": region, "endpointURL": elbv2URL},
		"certificates": map[string]any{"provider": "cert-manager"},
	}
}

// Albdrain is albdrain's manager (webhook and watcher) running in-process
// as its Deployment would in a cluster: configured by command-line flags,
// the webhook behind the MutatingWebhookConfiguration over TLS, the
// watcher's hold endpoint over TLS at a fixed address the pods are told
// about, and ELBv2 reached through the real SDK.
type Albdrain struct {
	env *kubetest.Env
	// user is the chart's ServiceAccount, which the manager acts as.
	user   string
	args   []string
	config app.Config
	aws    aws.Config

	// holdCA is what pods trust for the hold endpoint.
	holdCA []byte

	cancel context.CancelFunc
	done   chan error
}

// Site is where albdrain's manager serves its pods: the hold endpoint's
// host, the directory of the certificate it presents there and the CA file
// pods trust for it, and the helper image the webhook injects.
type Site struct {
	HoldHost, HoldCertDir, HoldCAFile, HelperImage string
}

// newAlbdrain prepares the manager for the stand-in kubelet's pods; Start
// runs it.
func newAlbdrain(ctx context.Context, env *kubetest.Env, dir string, t Timings, awsCfg aws.Config, elbv2URL string) (*Albdrain, error) {
	wio := env.Environment.WebhookInstallOptions
	caFile := filepath.Join(dir, "albdrain-ca.crt")
	if err := os.WriteFile(caFile, wio.LocalServingCAData, 0o600); err != nil {
		return nil, err
	}
	// The serving certificate envtest issued for the webhook names its
	// host, 127.0.0.1, so the hold endpoint can present it too; pods call it
	// there rather than through the Service's DNS name.
	return NewAlbdrain(ctx, env, t, awsCfg, elbv2URL, Site{
		HoldHost: wio.LocalServingHost, HoldCertDir: wio.LocalServingCertDir, HoldCAFile: caFile, HelperImage: "albdrain:e2e",
	})
}

// NewAlbdrain installs the chart's ServiceAccount and RBAC and prepares a
// manager with the command line the chart renders, less the addresses and
// files that differ in this process: its webhook serves env's
// WebhookConfiguration and its hold endpoint serves pods at site. Start
// runs it.
func NewAlbdrain(ctx context.Context, env *kubetest.Env, t Timings, awsCfg aws.Config, elbv2URL string, site Site) (*Albdrain, error) {
	m, err := helmchart.Render(Namespace, ChartValues(t, awsCfg.Region, elbv2URL, site.HelperImage))
	if err != nil {
		return nil, err
	}
	if err := m.InstallRBAC(ctx, env.Client, Namespace); err != nil {
		return nil, err
	}
	wio := env.Environment.WebhookInstallOptions
	holdPort, err := ports.Reserve()
	if err != nil {
		return nil, err
	}
	holdAddr := net.JoinHostPort(site.HoldHost, strconv.Itoa(holdPort))
	peerToken, err := writePeerToken(ctx, env.Client, filepath.Join(filepath.Dir(site.HoldCAFile), "albdrain-peer-token"))
	if err != nil {
		return nil, err
	}
	rendered, err := m.ManagerArgs()
	if err != nil {
		return nil, err
	}
	args, err := helmchart.WithLocal(rendered, map[string]string{
		"metrics-bind-address":      "0",
		"health-probe-bind-address": "0",
		"webhook-port":              strconv.Itoa(wio.LocalServingPort),
		"webhook-cert-dir":          wio.LocalServingCertDir,
		"hold-bind-address":         holdAddr,
		"hold-cert-dir":             site.HoldCertDir,
		"watcher-url":               "https://" + holdAddr,
		"watcher-ca-file":           site.HoldCAFile,
		// No Service of the chart routes to a manager in this process; the
		// replicas that stop through their endpoints set their own.
		"shutdown-service": "",
		// The kubelet projects these into the manager's pod; here the
		// namespace is the chart's, and the token one the apiserver issues
		// the ServiceAccount for albdrain's audience.
		"pod-namespace":   Namespace,
		"peer-token-file": peerToken,
	})
	if err != nil {
		return nil, err
	}
	cfg, err := parseConfig(args)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(site.HoldCAFile)
	if err != nil {
		return nil, err
	}
	return &Albdrain{env: env, user: helmchart.ServiceAccountUser(Namespace), args: args, config: cfg, aws: awsCfg, holdCA: ca}, nil
}

// Start runs the manager and returns once its webhook and hold endpoint
// serve.
func (a *Albdrain) Start(ctx context.Context) error {
	if a.cancel != nil {
		return errors.New("albdrain already running")
	}
	logger := ctrl.Log.WithName("albdrain")
	logger.Info("starting albdrain's manager", "args", a.args)
	mctx, cancel := context.WithCancel(ctrl.LoggerInto(context.WithoutCancel(ctx), logger))
	// The SDK's default credential chain has nothing to find here; the
	// emulator takes any static credentials.
	rc := rest.CopyConfig(a.env.Config)
	rc.Impersonate = rest.ImpersonationConfig{UserName: a.user}
	mgr, err := app.NewManager(mctx, rc, a.config, app.Options{AWS: &a.aws, Process: app.InProcess()})
	if err != nil {
		cancel()
		return fmt.Errorf("albdrain manager: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	a.cancel, a.done = cancel, done
	ready := func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			done <- err
			return false, fmt.Errorf("albdrain manager exited: %w", err)
		default:
		}
		return mgr.GetWebhookServer().StartedChecker()(nil) == nil && a.holdEndpointUp(), nil
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, ready); err != nil {
		return errors.Join(fmt.Errorf("albdrain did not become ready: %w", err), a.Stop())
	}
	return nil
}

// holdEndpointUp reports whether the hold endpoint completes a TLS
// handshake with the certificate pods are told to trust.
func (a *Albdrain) holdEndpointUp() bool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.holdCA)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", a.config.Drain.HoldAddr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Stop stops the manager, as a rollout or a crash of albdrain would: holds
// in progress are dropped and their helpers retry.
func (a *Albdrain) Stop() error {
	if a.cancel == nil {
		return nil
	}
	a.cancel()
	err := <-a.done
	a.cancel, a.done = nil, nil
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Restart stops the manager and starts a new one on the same addresses.
func (a *Albdrain) Restart(ctx context.Context) error {
	if err := a.Stop(); err != nil {
		return err
	}
	return a.Start(ctx)
}

// writePeerToken writes to path a token of the manager's ServiceAccount for
// albdrain's audience, as the chart's projected volume holds one, which
// replicas present to each other.
func writePeerToken(ctx context.Context, c client.Client, path string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: helmchart.ReleaseName}}
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{contract.TokenAudience}, ExpirationSeconds: ptr.To[int64](24 * 3600)}}
	if err := c.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", fmt.Errorf("peer token: %w", err)
	}
	return path, os.WriteFile(path, []byte(tr.Status.Token), 0o600)
}
