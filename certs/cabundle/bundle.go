package cabundle

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"time"
)

// MaxCAs bounds a bundle: the current CAs and the newest of those they
// replaced. A replaced CA stays trusted while replicas may still serve a
// certificate it signed and while pods may still hold an older bundle, then
// gives way to later ones.
const MaxCAs = 3

// parse reads the certificates of a PEM bundle, skipping anything else.
func parse(pemData []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// merge is the bundle to publish: every current CA, then the previously
// published ones that are still valid, newest first, at most MaxCAs in all
// (the current ones are always kept). Its order depends only on the
// certificates, so replicas that merge the same ones, one of which has
// seen a new CA before the other, write the same bytes and do not undo
// each other's updates.
func merge(current, published []*x509.Certificate, now time.Time) ([]byte, error) {
	if len(current) == 0 {
		return nil, errors.New("no CA certificate")
	}
	newestFirst := func(a, b *x509.Certificate) int {
		if c := b.NotBefore.Compare(a.NotBefore); c != 0 {
			return c
		}
		return bytes.Compare(a.Raw, b.Raw)
	}
	cur := slices.Clone(current)
	slices.SortFunc(cur, newestFirst)
	var old []*x509.Certificate
	for _, c := range published {
		if now.Before(c.NotAfter) && !slices.ContainsFunc(cur, func(k *x509.Certificate) bool { return k.Equal(c) }) &&
			!slices.ContainsFunc(old, func(k *x509.Certificate) bool { return k.Equal(c) }) {
			old = append(old, c)
		}
	}
	slices.SortFunc(old, newestFirst)
	keep := append(cur, old[:min(len(old), max(0, MaxCAs-len(cur)))]...)
	slices.SortFunc(keep, newestFirst)
	var buf bytes.Buffer
	for _, c := range keep {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes(), nil
}
