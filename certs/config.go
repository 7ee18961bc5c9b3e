// Package certs provides the TLS certificate albdrain serves its admission
// webhook and hold endpoint with. By default albdrain is its own certificate
// authority: open-policy-agent/cert-controller keeps a CA and a serving
// certificate in a Secret, rotates them before they expire and patches the
// CA into the MutatingWebhookConfiguration. The Secret is mounted as the
// manager's certificate directory, and the servers reload the files when the
// kubelet updates them. With rotation off the files come from elsewhere,
// normally a cert-manager Certificate.
package certs

import (
	"errors"
	"flag"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
)

// File names in the certificate directory, which are also the data keys of
// the Secret mounted there. cert-manager writes the same names.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	CertFile   = "tls.crt"
	KeyFile    = "tls.key"
)

// Config is the certificates' part of the manager's command line.
type Config struct {
	// Rotate makes albdrain issue, rotate and inject its own certificates.
	Rotate bool
	// SecretName and SecretNamespace locate the Secret holding them; it
	// must exist (the chart creates it empty).
	SecretName, SecretNamespace string
	// WebhookConfigName is the MutatingWebhookConfiguration whose CA bundle
	// is kept current.
	WebhookConfigName string
	// DNSName is the name the serving certificate is issued for: the
	// Service's <name>.<namespace>.svc, which both the apiserver and the
	// in-pod helper dial.
	DNSName string
}

// BindFlags registers the certificate flags.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Rotate, "cert-rotation", false, "issue a self-signed CA and serving certificate into --cert-secret-name, rotate them before expiry and inject the CA into --webhook-config-name; "+
		"the webhook then hands this CA to pods unless --watcher-ca-file is set. Off: the certificate directory is filled by someone else (cert-manager)")
	fs.StringVar(&c.SecretName, "cert-secret-name", "albdrain-certs", "Secret holding the CA and serving certificate; must exist, mounted at --webhook-cert-dir")
	fs.StringVar(&c.SecretNamespace, "cert-secret-namespace", "", "namespace of --cert-secret-name (albdrain's own)")
	fs.StringVar(&c.WebhookConfigName, "webhook-config-name", "albdrain", "MutatingWebhookConfiguration whose CA bundle albdrain keeps current")
	fs.StringVar(&c.DNSName, "cert-dns-name", "", "DNS name of the serving certificate: the Service's <name>.<namespace>.svc")
}

// Validate reports every invalid flag at once; without rotation there is
// nothing to check.
func (c *Config) Validate() error {
	if !c.Rotate {
		return nil
	}
	var errs []error
	check := func(flag, value string, validate func(string) []string) {
		if value == "" {
			errs = append(errs, fmt.Errorf("--%s is required with --cert-rotation", flag))
			return
		}
		for _, msg := range validate(value) {
			errs = append(errs, fmt.Errorf("--%s %q: %s", flag, value, msg))
		}
	}
	check("cert-secret-name", c.SecretName, validation.IsDNS1123Subdomain)
	check("cert-secret-namespace", c.SecretNamespace, validation.IsDNS1123Label)
	check("webhook-config-name", c.WebhookConfigName, validation.IsDNS1123Subdomain)
	check("cert-dns-name", c.DNSName, validation.IsDNS1123Subdomain)
	return errors.Join(errs...)
}
