// Package tlspolicy is the TLS policy of albdrain's servers, the admission
// webhook and the hold endpoint: TLS 1.2 or newer and, for TLS 1.2, only
// forward-secret AEAD cipher suites. Go's defaults still accept the CBC
// suites with SHA-1 MACs for TLS 1.2, which scanners and most hardening
// guides flag; every client albdrain has (the kube-apiserver and the in-pod
// helper, both Go) negotiates TLS 1.3 or one of the suites kept here.
// TLS 1.3's suites are not configurable in Go and are all AEAD.
package tlspolicy

import "crypto/tls"

// CipherSuites are the TLS 1.2 suites albdrain's servers accept: ECDHE key
// exchange with AES-GCM or ChaCha20-Poly1305, for ECDSA and RSA certificates.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Apply sets c's minimum version and TLS 1.2 cipher suites to the policy.
// Its signature fits controller-runtime's webhook.Options.TLSOpts.
func Apply(c *tls.Config) {
	c.MinVersion = tls.VersionTLS12
	c.CipherSuites = append([]uint16(nil), CipherSuites...)
}
