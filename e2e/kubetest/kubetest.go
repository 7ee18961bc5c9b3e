// Package kubetest starts a real kube-apiserver and etcd for tests, built from
// the Go module proxy by `make assets` and found through KUBEBUILDER_ASSETS.
package kubetest

import (
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/internal/lbc"
)

// Env is a running control plane and a client for it.
type Env struct {
	// Environment is the underlying envtest environment, for its webhook install options.
	Environment *envtest.Environment
	// Config reaches the apiserver as an administrator.
	Config *rest.Config
	// Client is an uncached client for Config using Scheme.
	Client client.Client
	// Scheme knows the built-in types and TargetGroupBinding.
	Scheme *runtime.Scheme
}

type options struct {
	tgbCRD      bool
	gatewayCRDs bool
	inCluster   bool
	webhooks    []*admissionv1.MutatingWebhookConfiguration
}

// Option changes what Start sets up.
type Option func(*options)

// WithTargetGroupBindingCRD installs the TargetGroupBinding CRD, as a cluster
// running the AWS Load Balancer Controller has.
func WithTargetGroupBindingCRD() Option { return func(o *options) { o.tgbCRD = true } }

// WithGatewayCRDs installs the Gateway API's CRDs (from the Go module cache)
// and the load balancer controller's gateway CRDs, as a cluster using the
// controller's Gateway support has.
func WithGatewayCRDs() Option { return func(o *options) { o.gatewayCRDs = true } }

// WithMutatingWebhooks registers configurations whose client configs envtest
// rewrites to a local TLS server it issues a certificate for; read the serving
// host, port and certificate directory from Env.Environment.WebhookInstallOptions.
func WithMutatingWebhooks(cfgs ...*admissionv1.MutatingWebhookConfiguration) Option {
	return func(o *options) { o.webhooks = append(o.webhooks, cfgs...) }
}

// NewScheme returns a scheme with the built-in types and TargetGroupBinding.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := lbc.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Start runs a control plane for the test and stops it at cleanup. It fails
// the test when the binaries are missing rather than skipping, so a CI run
// without them cannot pass by testing nothing.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	env, stop, err := Run(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Logf("stop control plane: %v", err)
		}
	})
	return env
}
