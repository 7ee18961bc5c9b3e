package image

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Extract writes every file of img's layers into dir and returns their tar
// headers by path in the image, so that a test can read what a node would
// run: the mode and owner, and the binary itself under dir.
func Extract(img v1.Image, dir string) (map[string]*tar.Header, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	files := map[string]*tar.Header{}
	for _, l := range layers {
		if err := extractLayer(l, dir, files); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func extractLayer(l v1.Layer, dir string, files map[string]*tar.Header) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !filepath.IsLocal(hdr.Name) {
			return fmt.Errorf("image: layer file %q outside the image's root", hdr.Name)
		}
		files["/"+hdr.Name] = hdr
		out, err := os.Create(filepath.Join(dir, hdr.Name))
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}
