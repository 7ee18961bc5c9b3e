package kubetest

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/albdrain/albdrain/internal/lbc"
)

// gatewayAPIKinds are the Gateway API CRDs the LBC reads, by file name in
// the module's standard channel.
var gatewayAPIKinds = []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "tcproutes", "tlsroutes", "udproutes", "referencegrants"}

// GatewayAPICRDs reads the Gateway API CRDs from the sigs.k8s.io/gateway-api
// module in the Go module cache, at the version the root module requires.
func GatewayAPICRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return nil, fmt.Errorf("locate sigs.k8s.io/gateway-api in the module cache: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard")
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, k := range gatewayAPIKinds {
		opts := envtest.CRDInstallOptions{Paths: []string{filepath.Join(dir, "gateway.networking.k8s.io_"+k+".yaml")}, ErrorIfPathMissing: true}
		if err := envtest.ReadCRDFiles(&opts); err != nil {
			return nil, fmt.Errorf("read %s CRD: %w", k, err)
		}
		crds = append(crds, opts.CRDs...)
	}
	return crds, nil
}

// LBCGatewayCRDs decodes lbc.GatewayCRDYAML.
func LBCGatewayCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, doc := range bytes.Split(lbc.GatewayCRDYAML, []byte("\n---\n")) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
			return nil, fmt.Errorf("decode LBC gateway CRD: %w", err)
		}
		crds = append(crds, &crd)
	}
	return crds, nil
}

// TargetGroupBindingCRD decodes lbc.CRDYAML.
func TargetGroupBindingCRD() (*apiextensionsv1.CustomResourceDefinition, error) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(lbc.CRDYAML, &crd); err != nil {
		return nil, fmt.Errorf("decode TargetGroupBinding CRD: %w", err)
	}
	return &crd, nil
}

// InstallCRDs installs crds into a running cluster and waits until they are served.
func InstallCRDs(cfg *rest.Config, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	_, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: crds})
	return err
}
