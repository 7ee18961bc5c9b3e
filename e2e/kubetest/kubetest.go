// Package kubetest starts a real kube-apiserver and etcd for tests, built from
// the Go module proxy by `make assets` and found through KUBEBUILDER_ASSETS.
package kubetest

import (
	"os"
	"path/filepath"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/albdrain/albdrain/webhook/elbv2api"
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
	tgbCRD   bool
	webhooks []*admissionv1.MutatingWebhookConfiguration
}

// Option changes what Start sets up.
type Option func(*options)

// WithTargetGroupBindingCRD installs the TargetGroupBinding CRD, as a cluster
// running the AWS Load Balancer Controller has.
func WithTargetGroupBindingCRD() Option { return func(o *options) { o.tgbCRD = true } }

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
	if err := elbv2api.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Start runs a control plane for the test and stops it at cleanup. It fails
// the test when the binaries are missing rather than skipping, so a CI run
// without them cannot pass by testing nothing.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests through `make test` (it builds the control plane with `make assets`)")
	}
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		t.Fatalf("no kube-apiserver in KUBEBUILDER_ASSETS=%s: run `make assets`", assets)
	}
	scheme := NewScheme()
	env := &envtest.Environment{
		Scheme:                scheme,
		BinaryAssetsDirectory: assets,
		WebhookInstallOptions: envtest.WebhookInstallOptions{MutatingWebhooks: o.webhooks},
	}
	if o.tgbCRD {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(elbv2api.CRDYAML, &crd); err != nil {
			t.Fatalf("decode TargetGroupBinding CRD: %v", err)
		}
		env.CRDInstallOptions.CRDs = []*apiextensionsv1.CustomResourceDefinition{&crd}
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stop control plane: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &Env{Environment: env, Config: cfg, Client: c, Scheme: scheme}
}
