package image

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// The annotations that name an image in an OCI layout's index: containerd
// reads the full reference from its own key, and the OCI key holds the tag
// alone, as containerd's own exporter writes them.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationOCIRefName     = "org.opencontainers.image.ref.name"
)

// Entry is one named image, or multi-architecture index, of an OCI layout.
type Entry struct {
	// Ref is the full reference with a tag, e.g. ghcr.io/albdrain/albdrain:0.1.0.
	Ref string
	// Image or Index, exactly one.
	Image v1.Image
	Index v1.ImageIndex
}

// WriteArchive writes img, named ref, as an OCI image layout in a tar archive
// at dst, the format `ctr images import` loads.
func WriteArchive(dst, ref string, img v1.Image) error {
	return WriteArchiveOf(dst, Entry{Ref: ref, Image: img})
}

// WriteArchiveOf writes the entries as one OCI image layout in a tar archive at dst.
func WriteArchiveOf(dst string, entries ...Entry) error {
	dir, err := os.MkdirTemp("", "oci-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := WriteLayout(dir, entries...); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := tarDir(tmp, dir); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// WriteLayout writes the entries as an OCI image layout in the directory dir,
// which must be empty or absent: what `crane push`, `oras`, `skopeo copy
// oci:` or a registry-less signer read.
func WriteLayout(dir string, entries ...Entry) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("image: layout %s is not empty", dir)
	}
	tags := make([]name.Tag, len(entries))
	for i, e := range entries {
		tag, err := name.NewTag(e.Ref, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("image: reference %q: %w", e.Ref, err)
		}
		if (e.Image == nil) == (e.Index == nil) {
			return fmt.Errorf("image: %s: need exactly one of an image and an index", e.Ref)
		}
		tags[i] = tag
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image: layout: %w", err)
	}
	for i, e := range entries {
		opt := layout.WithAnnotations(map[string]string{
			annotationContainerdName: tags[i].Name(),
			annotationOCIRefName:     tags[i].TagStr(),
		})
		if e.Image != nil {
			err = p.AppendImage(e.Image, opt)
		} else {
			err = p.AppendIndex(e.Index, opt)
		}
		if err != nil {
			return fmt.Errorf("image: layout: %w", err)
		}
	}
	return nil
}

// tarDir writes the tree under dir into a tar file at dst.
func tarDir(dst, dir string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if walkErr != nil {
		f.Close()
		return fmt.Errorf("image: archive: %w", walkErr)
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("image: archive: %w", err)
	}
	return f.Close()
}
