package kubetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Run starts a control plane outside a test, for a TestMain that shares one
// control plane across a package's tests or for the demo program. Call stop
// when done; it stops the apiserver and etcd.
func Run(opts ...Option) (env *Env, stop func() error, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return nil, nil, errors.New("KUBEBUILDER_ASSETS is not set: run through make (its assets target builds the control plane)")
	}
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		return nil, nil, fmt.Errorf("no kube-apiserver in KUBEBUILDER_ASSETS=%s: run `make assets`", assets)
	}
	scheme := NewScheme()
	te := &envtest.Environment{
		Scheme:                scheme,
		BinaryAssetsDirectory: assets,
		WebhookInstallOptions: envtest.WebhookInstallOptions{MutatingWebhooks: o.webhooks},
	}
	if o.tgbCRD {
		crd, err := TargetGroupBindingCRD()
		if err != nil {
			return nil, nil, err
		}
		te.CRDInstallOptions.CRDs = []*apiextensionsv1.CustomResourceDefinition{crd}
	}
	if o.gatewayCRDs {
		gw, err := GatewayAPICRDs()
		if err != nil {
			return nil, nil, err
		}
		own, err := LBCGatewayCRDs()
		if err != nil {
			return nil, nil, err
		}
		te.CRDInstallOptions.CRDs = append(append(te.CRDInstallOptions.CRDs, gw...), own...)
	}
	cleanup := func() {}
	if o.inCluster {
		if cleanup, err = configureInCluster(te); err != nil {
			return nil, nil, err
		}
	}
	stop = func() error {
		defer cleanup()
		return te.Stop()
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("start kube-apiserver and etcd: %w", err), stop())
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("client: %w", err), stop())
	}
	return &Env{Environment: te, Config: cfg, Client: c, Scheme: scheme}, stop, nil
}
