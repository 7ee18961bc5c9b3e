package kubetest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/e2e/ports"
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
	if err := reservePorts(te); err != nil {
		return nil, nil, err
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
	release := func() {}
	stop = func() error {
		defer cleanup()
		if err := te.Stop(); err != nil {
			// They may be running still: the reaper kills them with
			// this process.
			return err
		}
		release()
		return nil
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("start kube-apiserver and etcd: %w", err), stop())
	}
	guarded, err := guard(te)
	if err != nil {
		return nil, nil, errors.Join(err, stop())
	}
	release = guarded
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("client: %w", err), stop())
	}
	return &Env{Environment: te, Config: cfg, Client: c, Scheme: scheme}, stop, nil
}

// reservePorts gives etcd, the apiserver and the webhook server ports
// reserved by package ports: those envtest would choose are free only at
// the moment it looks, and the webhook's is bound much later, by a manager
// the test starts.
func reservePorts(te *envtest.Environment) error {
	var p [4]int
	for i := range p {
		var err error
		if p[i], err = ports.Reserve(); err != nil {
			return fmt.Errorf("ports for the control plane: %w", err)
		}
	}
	te.ControlPlane.Etcd = &envtest.Etcd{URL: &url.URL{Scheme: "http", Host: loopback(p[0])}}
	te.ControlPlane.Etcd.Configure().Set("listen-peer-urls", "http://"+loopback(p[1]))
	api := te.ControlPlane.GetAPIServer()
	api.SecureServing.Address, api.SecureServing.Port = "127.0.0.1", strconv.Itoa(p[2])
	te.WebhookInstallOptions.LocalServingHost, te.WebhookInstallOptions.LocalServingPort = "127.0.0.1", p[3]
	return nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
