package image

import (
	"context"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"path/filepath"
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

// albdrainImage builds albdrain's binaries and its image, for this machine's
// architecture, once for the package (the release's other architectures are
// tools/release's).
var albdrainImage = sync.OnceValues(func() (v1.Image, error) {
	var err error
	if buildDir, err = os.MkdirTemp("", "albdrain-image-test-"); err != nil {
		return nil, err
	}
	if err := GoBuild(context.Background(), "go", "../..", buildDir, "./cmd/albdrain", "./cmd/albdrain-hold"); err != nil {
		return nil, err
	}
	return Build(Albdrain(buildDir))
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

// buildAlbdrain returns albdrain's image for this machine's architecture.
func buildAlbdrain(t *testing.T) v1.Image {
	t.Helper()
	img, err := albdrainImage()
	if err != nil {
		t.Fatal(err)
	}
	return img
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
	dir := t.TempDir()
	files, err := Extract(img, dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p, hdr := range files {
		paths = append(paths, p)
		if hdr.Mode != 0o755 || hdr.Uid != 0 {
			t.Errorf("%s: mode %o uid %d, want 755 owned by root", p, hdr.Mode, hdr.Uid)
		}
		f, err := elf.Open(filepath.Join(dir, p))
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
