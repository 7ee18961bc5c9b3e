// Package image builds container images without a container engine: static
// binaries in one layer on an empty base, as an OCI image that a runtime can
// import from an archive or that a registry can receive.
package image

import (
	"archive/tar"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is one executable of an image: Source on this machine, Path in the image.
type File struct {
	Path, Source string
}

// Spec describes an image of static executables on an empty base.
type Spec struct {
	// Files are copied into the image's only layer, mode 0755, owned by root.
	Files []File
	// User is the numeric user[:group] the image runs as.
	User string
	// Entrypoint is the command the image runs.
	Entrypoint []string
	// Arch is the GOARCH the files are built for; empty is this machine's.
	Arch string
}

// Validate reports a spec that would build an image unfit to run.
func (s Spec) Validate() error {
	if len(s.Files) == 0 {
		return fmt.Errorf("image: no files")
	}
	if len(s.Entrypoint) == 0 {
		return fmt.Errorf("image: no entrypoint")
	}
	if s.User == "" {
		return fmt.Errorf("image: no user")
	}
	seen := map[string]bool{}
	for _, f := range s.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || path.Dir(f.Path) != "/" {
			return fmt.Errorf("image: file path %q must be absolute, clean and at the root", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("image: file path %q twice", f.Path)
		}
		seen[f.Path] = true
	}
	if !seen[s.Entrypoint[0]] {
		return fmt.Errorf("image: entrypoint %q is not one of the image's files", s.Entrypoint[0])
	}
	return nil
}

// Build returns the image for spec: OCI media types, linux on spec.Arch, and fixed timestamps so that the same binaries give the same
// digest.
func Build(spec Spec) (v1.Image, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	layerTar, err := layerTar(spec.Files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("image: append layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", cmp.Or(spec.Arch, runtime.GOARCH)
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.User = spec.User
	cfg.Config.Entrypoint = slices.Clone(spec.Entrypoint)
	cfg.Config.WorkingDir = "/"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image: set config: %w", err)
	}
	return img, nil
}

// layerTar writes the files, sorted by path, into an uncompressed tar with
// zero timestamps.
func layerTar(files []File) ([]byte, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		data, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.Path[1:],
			Mode:     0o755,
			Size:     int64(len(data)),
			ModTime:  time.Unix(0, 0),
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("image: %s: %w", f.Path, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("image: %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return buf.Bytes(), nil
}
