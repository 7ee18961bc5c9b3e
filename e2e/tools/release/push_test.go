package release

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/albdrain/albdrain/e2e/image"
)

// smallImage is an image of one file, built without a compiler.
func smallImage(t *testing.T) v1.Image {
	t.Helper()
	src := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(src, []byte("binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := image.Build(image.Spec{Files: []image.File{{Path: "/x", Source: src}}, User: "1:1", Entrypoint: []string{"/x"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestPushIndex pushes an index to a registry served on loopback and pulls
// it back, with its image.
func TestPushIndex(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/albdrain/x:v1"
	img := smallImage(t)
	idx, err := Index(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := PushIndex(ref, idx, name.Insecure); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	got, err := pulled.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("registry holds %s, pushed %s", got, want)
	}
	imgDigest, _ := img.Digest()
	if _, err := pulled.Image(imgDigest); err != nil {
		t.Errorf("the pushed index's image: %v", err)
	}
}

// TestWriteLayoutOfIndexes writes two multi-arch entries, as make image and
// release-local do, and refuses to write into a layout that has content.
func TestWriteLayoutOfIndexes(t *testing.T) {
	idx, err := Index(smallImage(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	entries := []image.Entry{{Ref: "registry.test/a:v1", Index: idx}, {Ref: "registry.test/a-hold:v1", Index: idx}}
	if err := image.WriteLayout(dir, entries...); err != nil {
		t.Fatal(err)
	}
	back, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := back.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range m.Manifests {
		got = append(got, d.Annotations["io.containerd.image.name"]+" "+string(d.MediaType))
	}
	want := []string{"registry.test/a:v1 application/vnd.oci.image.index.v1+json", "registry.test/a-hold:v1 application/vnd.oci.image.index.v1+json"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("layout (-want +got):\n%s", d)
	}
	if err := image.WriteLayout(dir, entries...); err == nil {
		t.Error("WriteLayout wrote into a layout with content")
	}
	if err := image.WriteLayout(t.TempDir(), image.Entry{Ref: "registry.test/a:v1"}); err == nil {
		t.Error("WriteLayout accepted an entry with neither image nor index")
	}
}
