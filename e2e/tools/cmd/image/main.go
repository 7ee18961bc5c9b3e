// Command image builds albdrain's images without a container engine or an
// emulator: it cross-compiles the static manager and helper for each
// architecture, and writes albdrain's image and the helper image as
// multi-architecture OCI indexes, as an OCI archive that `ctr images import`
// (or `docker load`) reads and/or an OCI layout directory; with -push it
// pushes both to their registries. It prints, and with -values writes, the
// chart values that install exactly these images. For a release it also
// writes an SPDX SBOM of every binary (-sbom) and packages the chart with
// those values as its defaults (-chart); the chart push, the SBOM
// attestation and the signatures are the release workflow's
// (.github/workflows/release.yml).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/albdrain/albdrain/e2e/image"
	"github.com/albdrain/albdrain/e2e/tools/release"
	"github.com/albdrain/albdrain/e2e/tools/sbom"
)

func main() {
	var o options
	flag.StringVar(&o.tag, "tag", "ghcr.io/albdrain/albdrain:dev", "albdrain's image reference; its tag is the release version")
	flag.StringVar(&o.helperTag, "helper-tag", "", "the helper image's reference (default: the -tag repository with -hold, same tag)")
	flag.StringVar(&o.archive, "o", "", "OCI archive to write (empty: none)")
	flag.StringVar(&o.layout, "layout", "", "OCI layout directory to write, replaced (empty: none)")
	flag.StringVar(&o.values, "values", "", "chart values file to write for these images (empty: none)")
	flag.StringVar(&o.sbom, "sbom", "", "SPDX JSON SBOM of every binary to write (empty: none)")
	flag.StringVar(&o.chart, "chart", "", "directory to package the chart into, pinned to these images, versioned as -tag's tag (empty: none)")
	flag.BoolVar(&o.push, "push", false, "also push both images to their registries")
	flag.StringVar(&o.root, "root", ".", "albdrain's module root")
	flag.StringVar(&o.goBin, "go", "go", "go command")
	flag.StringVar(&o.binDir, "bin", "bin/image", "where the static binaries are built, one directory per architecture")
	arches := flag.String("arches", strings.Join(release.Arches, ","), "GOARCHes to build for, comma-separated")
	flag.Parse()
	o.arches = strings.Split(*arches, ",")
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type options struct {
	tag, helperTag, archive, layout, values string
	sbom, chart                             string
	push                                    bool
	root, goBin, binDir                     string
	arches                                  []string
}

func run(ctx context.Context, o options) error {
	if o.archive == "" && o.layout == "" && o.chart == "" && !o.push {
		return fmt.Errorf("nothing to do: set -o, -layout, -chart or -push")
	}
	if o.helperTag == "" {
		var err error
		if o.helperTag, err = release.HelperRef(o.tag); err != nil {
			return err
		}
	}
	binDir, err := filepath.Abs(o.binDir)
	if err != nil {
		return err
	}
	imgs, err := release.BuildImages(ctx, o.goBin, o.root, binDir, o.arches)
	if err != nil {
		return err
	}
	entries := []image.Entry{{Ref: o.tag, Index: imgs.Albdrain}, {Ref: o.helperTag, Index: imgs.Helper}}
	if o.archive != "" {
		if err := image.WriteArchiveOf(o.archive, entries...); err != nil {
			return err
		}
		fmt.Printf("wrote %s (%s, %s)\n", o.archive, o.tag, o.helperTag)
	}
	if o.layout != "" {
		if err := os.RemoveAll(o.layout); err != nil {
			return err
		}
		if err := image.WriteLayout(o.layout, entries...); err != nil {
			return err
		}
		fmt.Printf("wrote OCI layout %s (%s, %s)\n", o.layout, o.tag, o.helperTag)
	}
	vals, err := release.ChartValues(o.tag, o.helperTag, imgs)
	if err != nil {
		return err
	}
	if o.sbom != "" {
		if err := writeSBOM(o.sbom, "albdrain-"+vals.Image.Tag, o.arches, imgs); err != nil {
			return err
		}
		fmt.Printf("wrote SBOM %s\n", o.sbom)
	}
	if o.chart != "" {
		path, err := release.PackageChart(o.chart, vals.Image.Tag, release.Pin{
			Repository:  vals.Image.Repository,
			Tag:         vals.Image.Tag,
			Digest:      vals.Image.Digest,
			HelperImage: vals.Hold.HelperImage,
		})
		if err != nil {
			return err
		}
		fmt.Printf("packaged chart %s\n", path)
	}
	if o.push {
		for _, e := range entries {
			if err := release.PushIndex(e.Ref, e.Index); err != nil {
				return err
			}
			d, _ := e.Index.Digest()
			fmt.Printf("pushed %s@%s\n", e.Ref, d)
		}
	}
	text, err := yaml.Marshal(vals)
	if err != nil {
		return err
	}
	if o.values != "" {
		if err := os.WriteFile(o.values, text, 0o644); err != nil {
			return err
		}
		fmt.Printf("wrote chart values %s (helm install ... -f %s)\n", o.values, o.values)
	}
	fmt.Printf("chart values for these images (%s):\n%s", strings.Join(o.arches, ", "), text)
	return nil
}

// writeSBOM writes the SBOM, named name, of every binary in the images to path.
func writeSBOM(path, name string, arches []string, imgs *release.Images) error {
	var bins []sbom.Binary
	for _, arch := range arches {
		for _, b := range []string{"albdrain", "albdrain-hold"} {
			bins = append(bins, sbom.Binary{Name: b + " linux/" + arch, Path: filepath.Join(imgs.BinDirs[arch], b)})
		}
	}
	doc, err := sbom.Build(name, sourceDate(), bins...)
	if err != nil {
		return err
	}
	return doc.WriteFile(path)
}

// sourceDate is the SBOM's creation time: SOURCE_DATE_EPOCH when set (the
// release workflow sets the tagged commit's time), so that a rebuild gives
// the same document.
func sourceDate() time.Time {
	var sec int64
	if _, err := fmt.Sscan(os.Getenv("SOURCE_DATE_EPOCH"), &sec); err == nil {
		return time.Unix(sec, 0)
	}
	return time.Now()
}
