package release

import (
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/albdrain/albdrain/e2e/image"
)

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

// elfMachine is the ELF machine each GOARCH's binaries must carry: a node
// of the other architecture fails them with "exec format error".
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// TestImagesPerArchitecture checks both indexes `make image` writes: one
// linux image per architecture, whose config names that architecture and
// whose every binary is a static ELF executable for that machine.
func TestImagesPerArchitecture(t *testing.T) {
	imgs, err := BuildImages(context.Background(), "go", "../../..", t.TempDir(), Arches)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		idx       v1.ImageIndex
		wantFiles []string
	}{
		{"albdrain", imgs.Albdrain, []string{image.ManagerPath, image.HelperPath}},
		{"helper", imgs.Helper, []string{image.HelperPath}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIImageIndex {
				t.Errorf("index media type %s, want %s", m.MediaType, types.OCIImageIndex)
			}
			var platforms []string
			for _, d := range m.Manifests {
				platforms = append(platforms, d.Platform.String())
			}
			if d := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, platforms); d != "" {
				t.Errorf("index platforms (-want +got):\n%s", d)
			}
			for _, arch := range Arches {
				img := platformImage(t, tt.idx, arch)
				cfg, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cfg.OS != "linux" || cfg.Architecture != arch {
					t.Errorf("%s image config says %s/%s", arch, cfg.OS, cfg.Architecture)
				}
				dir := t.TempDir()
				files, err := image.Extract(img, dir)
				if err != nil {
					t.Fatal(err)
				}
				var paths []string
				for p := range files {
					paths = append(paths, p)
					f, err := elf.Open(filepath.Join(dir, p))
					if err != nil {
						t.Fatalf("%s %s: %v", arch, p, err)
					}
					if f.Machine != elfMachine[arch] || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
						t.Errorf("%s %s: ELF %s %s %s, want %s ELFCLASS64 ET_EXEC", arch, p, f.Machine, f.Class, f.Type, elfMachine[arch])
					}
					f.Close()
				}
				sort.Strings(paths)
				if d := cmp.Diff(tt.wantFiles, paths); d != "" {
					t.Errorf("%s files (-want +got):\n%s", arch, d)
				}
			}
		})
	}
}

// TestMakefileWarmsEveryArchitecture checks that make's release-cache,
// which compiles the images' binaries before the tools tier's tests build
// them, compiles them for the architectures the images are built for.
func TestMakefileWarmsEveryArchitecture(t *testing.T) {
	mk, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RELEASE_ARCHES := (.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile sets no RELEASE_ARCHES")
	}
	if d := cmp.Diff(Arches, strings.Fields(string(m[1]))); d != "" {
		t.Errorf("RELEASE_ARCHES (-release.Arches +Makefile):\n%s", d)
	}
}
