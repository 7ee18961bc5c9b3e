// Package release builds what a release of albdrain publishes, from the
// image package image defines and the chart package helmchart renders: both
// images for every architecture as OCI indexes, the chart values that
// install them by digest, the chart packaged with those values as its
// defaults, and the push to a registry. `make image` and `make
// release-local` run it (cmd/image).
package release

import (
	"context"
	"fmt"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/albdrain/albdrain/e2e/image"
)

// Arches are the architectures albdrain's images are built for: EKS's x86
// nodes and its Graviton (arm64) nodes. A pod on a node whose architecture
// an image lacks stays in Init with "exec format error".
var Arches = []string{"amd64", "arm64"}

// Images are albdrain's multi-architecture images, built from one tree.
type Images struct {
	// Albdrain holds the manager and the helper; Helper holds the helper alone.
	Albdrain, Helper v1.ImageIndex
	// BinDirs maps each architecture to the directory of its binaries.
	BinDirs map[string]string
}

// BuildImages cross-compiles the manager and the helper of the module at
// root for each of arches into binDir/<arch>, and returns albdrain's image
// and the helper image as OCI indexes over those architectures.
func BuildImages(ctx context.Context, goBin, root, binDir string, arches []string) (*Images, error) {
	if len(arches) == 0 {
		return nil, fmt.Errorf("release: no architectures")
	}
	out := &Images{BinDirs: map[string]string{}}
	var albdrain, helper []v1.Image
	for _, arch := range arches {
		dir := filepath.Join(binDir, arch)
		if err := image.GoBuildArch(ctx, goBin, root, dir, arch, "./cmd/albdrain", "./cmd/albdrain-hold"); err != nil {
			return nil, err
		}
		out.BinDirs[arch] = dir
		for _, b := range []struct {
			spec image.Spec
			imgs *[]v1.Image
		}{{image.Albdrain(dir), &albdrain}, {image.Helper(dir), &helper}} {
			b.spec.Arch = arch
			img, err := image.Build(b.spec)
			if err != nil {
				return nil, err
			}
			*b.imgs = append(*b.imgs, img)
		}
	}
	var err error
	if out.Albdrain, err = Index(albdrain...); err != nil {
		return nil, err
	}
	if out.Helper, err = Index(helper...); err != nil {
		return nil, err
	}
	return out, nil
}

// Index returns an OCI image index of imgs, each under the platform its
// config names, so that a runtime pulls the one for its node.
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	seen := map[string]bool{}
	for _, img := range imgs {
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("release: index: %w", err)
		}
		p := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture}
		if seen[p.String()] {
			return nil, fmt.Errorf("release: index: platform %s twice", p)
		}
		seen[p.String()] = true
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}
