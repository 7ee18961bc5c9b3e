package image

import (
	"archive/tar"
	"context"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"

	"github.com/albdrain/albdrain/webhook"
)

// buildDir holds the binaries albdrainImage builds, once a test asks for
// them; they stay readable until the tests end (the layer is read lazily),
// then TestMain removes them.
var buildDir string

// albdrainImages builds albdrain's binaries and images, for every
// architecture, once for the package.
var albdrainImages = sync.OnceValues(func() (*Images, error) {
	var err error
	if buildDir, err = os.MkdirTemp("", "albdrain-image-test-"); err != nil {
		return nil, err
	}
	return BuildImages(context.Background(), "go", "../..", buildDir, Arches)
})

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func buildImages(t *testing.T) *Images {
	t.Helper()
	imgs, err := albdrainImages()
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

// buildAlbdrain returns albdrain's image for this machine's architecture.
func buildAlbdrain(t *testing.T) v1.Image {
	t.Helper()
	return platformImage(t, buildImages(t).Albdrain, runtime.GOARCH)
}

// platformImage returns the image of idx for linux/arch.
func platformImage(t *testing.T, idx v1.ImageIndex, arch string) v1.Image {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("the index has no linux/%s image", arch)
	return nil
}

// layerFile is one file of an image's layers: its header, and where it was extracted.
type layerFile struct {
	hdr   *tar.Header
	local string
}

// layerFiles extracts every file of img's layers and returns them by path in the image.
func layerFiles(t *testing.T, img v1.Image) map[string]layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]layerFile{}
	dir := t.TempDir()
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dir, hdr.Name)
			files["/"+hdr.Name] = layerFile{hdr: hdr, local: dst}
			out, err := os.Create(dst)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			out.Close()
		}
		rc.Close()
	}
	return files
}

func TestAlbdrainImageConfig(t *testing.T) {
	img := buildAlbdrain(t)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		OS, Arch, User string
		Entrypoint     []string
		Cmd            []string
	}{cfg.OS, cfg.Architecture, cfg.Config.User, cfg.Config.Entrypoint, cfg.Config.Cmd}
	want := got
	want.OS, want.User, want.Entrypoint, want.Cmd = "linux", "65532:65532", []string{"/albdrain"}, nil
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("image config (-want +got):\n%s", d)
	}
	if cfg.Architecture == "" {
		t.Error("image config names no architecture")
	}
}

func TestAlbdrainImageFiles(t *testing.T) {
	img := buildAlbdrain(t)
	files := layerFiles(t, img)
	var paths []string
	for p, lf := range files {
		paths = append(paths, p)
		hdr := lf.hdr
		if hdr.Mode != 0o755 || hdr.Uid != 0 {
			t.Errorf("%s: mode %o uid %d, want 755 owned by root", p, hdr.Mode, hdr.Uid)
		}
		f, err := elf.Open(lf.local)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s has an ELF interpreter: it is not static", p)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v", p, libs)
		}
		f.Close()
	}
	sort.Strings(paths)
	if d := cmp.Diff([]string{"/albdrain", "/albdrain-hold"}, paths); d != "" {
		t.Errorf("image files (-want +got):\n%s", d)
	}
}

// TestPathsAgree checks that the chart's values and the webhook's default flag
// name the helper where the image holds it.
func TestPathsAgree(t *testing.T) {
	raw, err := os.ReadFile("../../charts/albdrain/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Hold struct {
			HelperImagePath string `json:"helperImagePath"`
		} `json:"hold"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
	var cfg webhook.Config
	cfg.BindFlags(fs)
	got := map[string]string{
		"chart hold.helperImagePath":          values.Hold.HelperImagePath,
		"webhook --helper-image-path default": fs.Lookup("helper-image-path").DefValue,
	}
	want := map[string]string{
		"chart hold.helperImagePath":          HelperPath,
		"webhook --helper-image-path default": HelperPath,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("helper path (-want +got):\n%s", d)
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{Files: []File{{Path: "/a", Source: "a"}}, User: "1", Entrypoint: []string{"/a"}}
	tests := []struct {
		name    string
		edit    func(*Spec)
		wantErr bool
	}{
		{"valid", func(*Spec) {}, false},
		{"no files", func(s *Spec) { s.Files = nil }, true},
		{"no user", func(s *Spec) { s.User = "" }, true},
		{"no entrypoint", func(s *Spec) { s.Entrypoint = nil }, true},
		{"entrypoint not a file", func(s *Spec) { s.Entrypoint = []string{"/b"} }, true},
		{"relative path", func(s *Spec) { s.Files = []File{{Path: "a"}}; s.Entrypoint = []string{"a"} }, true},
		{"nested path", func(s *Spec) { s.Files = []File{{Path: "/x/a"}}; s.Entrypoint = []string{"/x/a"} }, true},
		{"twice", func(s *Spec) { s.Files = append(s.Files, s.Files[0]) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			s.Files = append([]File(nil), ok.Files...)
			tt.edit(&s)
			if err := s.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestBuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "x")
	if err := os.WriteFile(src, []byte("binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Files: []File{{Path: "/x", Source: src}}, User: "1:1", Entrypoint: []string{"/x"}}
	var digests []v1.Hash
	for range 2 {
		img, err := Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same files: digests %s and %s", digests[0], digests[1])
	}
}
