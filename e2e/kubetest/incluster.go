package kubetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/e2e/testcert"
)

// ServiceIP is the address of the default/kubernetes Service: the first of
// the Service range envtest gives the apiserver (10.0.0.0/24).
var ServiceIP = net.IPv4(10, 0, 0, 1)

// ServiceCIDR is the apiserver's Service range, where ClusterIPs come from.
const ServiceCIDR = "10.0.0.0/24"

// WithInClusterClients sets the apiserver up for clients running in pods
// on a real node, as a cluster's apiserver is:
//   - its serving certificate also names the kubernetes Service's address
//     and DNS names, so rest.InClusterConfig verifies it unchanged;
//   - the ServiceAccount admission plugin is on (envtest turns it off), so
//     pods get their ServiceAccount token volume;
//   - webhooks named by Service are called at the Service's endpoints
//     (--enable-aggregator-routing), as the apiserver has no route to
//     ClusterIPs here, where a cluster's control plane runs kube-proxy or
//     has one;
//   - the kubernetes Service's endpoints are left to the caller
//     (--endpoint-reconciler-type=none): the apiserver listens on loopback,
//     which pods cannot reach, so the node publishes the address of its
//     forwarder to the apiserver instead.
//
// Pods then need a KCM with serviceaccount-controller and
// root-ca-certificate-publisher-controller (for the kube-root-ca.crt
// ConfigMap their token volume reads).
func WithInClusterClients() Option { return func(o *options) { o.inCluster = true } }

// configureInCluster writes the apiserver's certificate directory before
// envtest starts it: envtest keeps a directory that already holds a
// serving certificate, and its clients trust SecureServing.CA.
func configureInCluster(te *envtest.Environment) (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "albdrain-apiserver-")
	if err != nil {
		return nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	certPEM, keyPEM, err := testcert.ServingCert(
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), ServiceIP})
	if err != nil {
		return nil, err
	}
	// The ServiceAccount token signer, under the names envtest passes.
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := testcert.KeyPEM(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{
		"apiserver.crt": certPEM, "apiserver.key": keyPEM,
		"sa-signer.key": saKeyPEM, "sa-signer.crt": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	api := te.ControlPlane.GetAPIServer()
	api.CertDir = dir
	api.SecureServing.CA = certPEM
	args := api.Configure()
	args.Set("enable-admission-plugins", "ServiceAccount")
	args.Disable("disable-admission-plugins")
	args.Set("enable-aggregator-routing", "true")
	args.Set("endpoint-reconciler-type", "none")
	return cleanup, nil
}
