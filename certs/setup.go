package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// Lifetimes. They are cert-controller's defaults, spelled out because the
// first certificate is issued before the rotator would fill them in.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 365 * 24 * time.Hour
	// renewBefore is how long before expiry a certificate is replaced.
	renewBefore = 90 * 24 * time.Hour
	// checkEvery is how often the rotator looks at expiry on its own;
	// a change to the Secret or the webhook configuration triggers it too.
	checkEvery = 12 * time.Hour
	caName     = "albdrain-ca"
)

// mountTimeout bounds the wait for the kubelet to project a new Secret
// into the pod: its periodic sync takes about a minute.
const mountTimeout = 2 * time.Minute

// Setup makes sure the certificate directory holds a valid serving
// certificate before the manager's TLS servers start, since they fail
// without one, and keeps it valid afterwards. With rotation on it issues the
// certificate into the Secret if needed, waits until the kubelet has mounted
// it (about a minute on a fresh install), and adds cert-controller's rotator
// to mgr. Call it before mgr.Start. The returned check passes once the CA is
// in the webhook configuration, so a replica is not ready before the
// apiserver can verify it. rotatorName names the rotator's controller;
// controller-runtime wants it unique in the process.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg Config, certDir, rotatorName string) (healthz.Checker, error) {
	if !cfg.Rotate {
		return healthz.Ping, nil
	}
	ready := make(chan struct{})
	cr := newRotator(cfg, certDir, rotatorName, ready)
	if err := issue(ctx, mgr.GetAPIReader(), mgr.GetClient(), cr); err != nil {
		return nil, err
	}
	if err := waitMounted(ctx, certDir, cfg.DNSName); err != nil {
		return nil, err
	}
	if err := rotator.AddRotator(mgr, cr); err != nil {
		return nil, fmt.Errorf("add certificate rotator: %w", err)
	}
	return func(*http.Request) error {
		select {
		case <-ready:
			return nil
		default:
			return fmt.Errorf("CA not yet injected into MutatingWebhookConfiguration %s", cfg.WebhookConfigName)
		}
	}, nil
}

func newRotator(cfg Config, certDir, name string, ready chan struct{}) *rotator.CertRotator {
	return &rotator.CertRotator{
		ControllerName: name,
		SecretKey:      types.NamespacedName{Namespace: cfg.SecretNamespace, Name: cfg.SecretName},
		CertDir:        certDir,
		CAName:         caName,
		CAOrganization: "albdrain",
		DNSName:        cfg.DNSName,
		IsReady:        ready,
		Webhooks:       []rotator.WebhookInfo{{Name: cfg.WebhookConfigName, Type: rotator.Mutating}},
		FieldOwner:     "albdrain",
		ExtKeyUsages:   &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// Every replica runs it: the manager has no leader election, and
		// concurrent rotations are settled by the Secret's resourceVersion.
		RequireLeaderElection:  false,
		CaCertDuration:         caValidity,
		ServerCertDuration:     serverValidity,
		LookaheadInterval:      renewBefore,
		RotationCheckFrequency: checkEvery,
		// Inject the CA only once this replica can serve the certificate it
		// vouches for.
		EnableReadinessCheck: true,
	}
}

// waitMounted polls certDir until it holds a certificate for dnsName that
// is valid now and chains to the CA next to it.
func waitMounted(ctx context.Context, certDir, dnsName string) error {
	ctrl.LoggerFrom(ctx).Info("waiting for the certificate Secret to be mounted", "dir", certDir)
	var last error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, mountTimeout, true, func(context.Context) (bool, error) {
		last = validFiles(certDir, dnsName)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("no valid certificate in %s (is the Secret mounted there?): %w", certDir, errors.Join(last, err))
	}
	return nil
}

func validFiles(dir, dnsName string) error {
	var pems [3][]byte
	for i, name := range []string{CACertFile, CertFile, KeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		pems[i] = b
	}
	_, err := rotator.ValidCert(pems[0], pems[1], pems[2], dnsName, &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, time.Now())
	return err
}
