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
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/drain"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/webhook"
)

// WebhookConfiguration is albdrain's registration as its chart installs it:
// pods in opted-in namespaces only, never albdrain's own, and never blocked
// when albdrain is down. envtest points it at the local webhook server.
func WebhookConfiguration() *admissionv1.MutatingWebhookConfiguration {
	return &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "albdrain"},
		Webhooks: []admissionv1.MutatingWebhook{{
			Name: "pods.albdrain.io",
			ClientConfig: admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{
				Namespace: "albdrain", Name: "albdrain", Path: ptr.To(strings.TrimPrefix(webhook.Path, "/")),
			}},
			Rules: []admissionv1.RuleWithOperations{{
				Operations: []admissionv1.OperationType{admissionv1.Create},
				Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			FailurePolicy:           ptr.To(admissionv1.Ignore),
			SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
			ReinvocationPolicy:      ptr.To(admissionv1.IfNeededReinvocationPolicy),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{contract.InjectKey: "enabled"}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "app.kubernetes.io/name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"albdrain"},
			}}},
		}},
	}
}

// Albdrain is albdrain's manager (webhook and watcher) running in-process
// as its Deployment would in a cluster: configured by command-line flags,
// the webhook behind the MutatingWebhookConfiguration over TLS, the
// watcher's hold endpoint over TLS at a fixed address the pods are told
// about, and ELBv2 reached through the real SDK.
type Albdrain struct {
	env    *kubetest.Env
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

// newAlbdrain prepares the manager's configuration for the stand-in
// kubelet's pods; Start runs it.
func newAlbdrain(env *kubetest.Env, dir string, t Timings, awsCfg aws.Config, elbv2URL string) (*Albdrain, error) {
	wio := env.Environment.WebhookInstallOptions
	caFile := filepath.Join(dir, "albdrain-ca.crt")
	if err := os.WriteFile(caFile, wio.LocalServingCAData, 0o600); err != nil {
		return nil, err
	}
	// The serving certificate envtest issued for the webhook names its
	// host, 127.0.0.1, so the hold endpoint can present it too.
	return NewAlbdrain(env, t, awsCfg, elbv2URL, Site{
		HoldHost: wio.LocalServingHost, HoldCertDir: wio.LocalServingCertDir, HoldCAFile: caFile, HelperImage: "albdrain:e2e",
	})
}

// NewAlbdrain prepares a manager whose webhook serves env's
// WebhookConfiguration and whose hold endpoint serves pods at site; Start
// runs it.
func NewAlbdrain(env *kubetest.Env, t Timings, awsCfg aws.Config, elbv2URL string, site Site) (*Albdrain, error) {
	wio := env.Environment.WebhookInstallOptions
	holdPort, err := freePort()
	if err != nil {
		return nil, err
	}
	holdAddr := net.JoinHostPort(site.HoldHost, strconv.Itoa(holdPort))
	args := []string{
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--webhook-port=" + strconv.Itoa(wio.LocalServingPort),
		"--webhook-cert-dir=" + wio.LocalServingCertDir,
		"--hold-bind-address=" + holdAddr,
		"--hold-cert-dir=" + site.HoldCertDir,
		"--watcher-url=https://" + holdAddr,
		"--watcher-ca-file=" + site.HoldCAFile,
		"--helper-image=" + site.HelperImage,
		"--hold-mode=wait",
		"--max-hold=" + t.MaxHold.String(),
		"--fallback-sleep=" + t.Fallback.String(),
		"--quiet-period=" + t.QuietPeriod.String(),
		"--shutdown-budget=" + t.ShutdownBudget.String(),
		"--poll-interval=" + t.WatcherPoll.String(),
		"--hold-margin=" + t.HoldMargin.String(),
		"--aws-region=" + awsCfg.Region,
		"--aws-endpoint-url=" + elbv2URL,
	}
	cfg, err := parseConfig(args)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(site.HoldCAFile)
	if err != nil {
		return nil, err
	}
	return &Albdrain{env: env, args: args, config: cfg, aws: awsCfg, holdCA: ca}, nil
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
	mgr, err := app.NewManager(mctx, a.env.Config, a.config, drain.WithAWSConfig(a.aws))
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
