package image

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func smallImage(t *testing.T) v1.Image {
	t.Helper()
	src := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(src, []byte("binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := Build(Spec{Files: []File{{Path: "/x", Source: src}}, User: "1:1", Entrypoint: []string{"/x"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, hdr.Name)
		if strings.HasSuffix(hdr.Name, "/") {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteArchive(t *testing.T) {
	img := smallImage(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "img.tar")
	if err := WriteArchive(archive, "registry.test/albdrain/x:v1", img); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "layout")
	untar(t, archive, out)
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(m.Manifests))
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	got := m.Manifests[0]
	if got.Digest != want {
		t.Errorf("index names manifest %s, want %s", got.Digest, want)
	}
	wantAnn := map[string]string{
		"io.containerd.image.name":          "registry.test/albdrain/x:v1",
		"org.opencontainers.image.ref.name": "v1",
	}
	if d := cmp.Diff(wantAnn, got.Annotations); d != "" {
		t.Errorf("annotations (-want +got):\n%s", d)
	}
	back, err := idx.Image(want)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := back.ConfigFile(); err != nil {
		t.Errorf("image in the archive has no readable config: %v", err)
	}
}

func TestWriteArchiveBadReference(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "img.tar")
	if err := WriteArchive(dst, "Not A Reference", smallImage(t)); err == nil {
		t.Error("WriteArchive accepted an invalid reference")
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("archive written for an invalid reference (stat: %v)", err)
	}
}
