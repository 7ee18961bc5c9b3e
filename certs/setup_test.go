package certs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// issuedFiles returns the file contents a freshly issued Secret would
// project into the certificate directory.
func issuedFiles(t *testing.T) map[string][]byte {
	t.Helper()
	c := fake.NewClientBuilder().WithObjects(emptySecret()).Build()
	if err := issue(context.Background(), c, c, newTestRotator()); err != nil {
		t.Fatal(err)
	}
	return getSecret(t, c).Data
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWaitMountedReturnsOnceTheFilesAreValid(t *testing.T) {
	dir := t.TempDir()
	files := issuedFiles(t)
	// A certificate for another name is what a stale or foreign mount looks like.
	writeFiles(t, dir, map[string][]byte{CACertFile: files[CACertFile], CertFile: []byte("stale"), KeyFile: files[KeyFile]})
	done := make(chan error, 1)
	go func() { done <- waitMounted(context.Background(), dir, testCfg.DNSName) }()
	writeFiles(t, dir, map[string][]byte{CertFile: files[CertFile]})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWaitMountedGivesUpWithTheReason(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := waitMounted(ctx, dir, testCfg.DNSName)
	if err == nil {
		t.Fatal("waitMounted = nil on an empty directory")
	}
	for _, want := range []string{dir, "is the Secret mounted", CACertFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWaitMountedRejectsACertificateForAnotherName(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, issuedFiles(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := waitMounted(ctx, dir, "other.albdrain.svc"); err == nil || !strings.Contains(err.Error(), "other.albdrain.svc") {
		t.Fatalf("waitMounted = %v, want a name mismatch", err)
	}
}
