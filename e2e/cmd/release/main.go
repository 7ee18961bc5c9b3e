// Command release builds everything a release of albdrain publishes, on
// disk and without a registry: albdrain's image and the helper image as
// multi-architecture indexes in one OCI layout, an SPDX SBOM of every binary
// in them, and the chart packaged with its image pinned to the built
// digests. With -push it also pushes both images; the chart push, the SBOM
// attestation and the signatures are the release workflow's
// (.github/workflows/release.yml), which needs the registry's identity.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"

	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/e2e/image"
	"github.com/albdrain/albdrain/e2e/sbom"
)

func main() {
	var o options
	flag.StringVar(&o.repository, "repository", "ghcr.io/albdrain/albdrain", "albdrain's image repository; the helper's is the same with -hold")
	flag.StringVar(&o.version, "version", "", "release version: the images' tag and the chart's version (default: the chart's appVersion)")
	flag.StringVar(&o.out, "out", "bin/release", "output directory, replaced")
	flag.BoolVar(&o.push, "push", false, "also push both images")
	flag.StringVar(&o.root, "root", ".", "albdrain's module root")
	flag.StringVar(&o.goBin, "go", "go", "go command")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

type options struct {
	repository, version, out string
	push                     bool
	root, goBin              string
}

func run(ctx context.Context, o options) error {
	if o.version == "" {
		v, err := chartAppVersion()
		if err != nil {
			return err
		}
		o.version = v
	}
	ref := o.repository + ":" + o.version
	helperRef, err := image.HelperRef(ref)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	imgs, err := image.BuildImages(ctx, o.goBin, o.root, filepath.Join(out, "bin"), image.Arches)
	if err != nil {
		return err
	}
	entries := []image.Entry{{Ref: ref, Index: imgs.Albdrain}, {Ref: helperRef, Index: imgs.Helper}}
	if err := image.WriteLayout(filepath.Join(out, "oci"), entries...); err != nil {
		return err
	}

	var bins []sbom.Binary
	for _, arch := range image.Arches {
		for _, b := range []string{"albdrain", "albdrain-hold"} {
			bins = append(bins, sbom.Binary{Name: b + " linux/" + arch, Path: filepath.Join(imgs.BinDirs[arch], b)})
		}
	}
	doc, err := sbom.Build("albdrain-"+o.version, sourceDate(), bins...)
	if err != nil {
		return err
	}
	if err := doc.WriteFile(filepath.Join(out, "albdrain.spdx.json")); err != nil {
		return err
	}

	vals, err := image.ChartValues(ref, helperRef, imgs)
	if err != nil {
		return err
	}
	text, err := yaml.Marshal(vals)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "values.yaml"), text, 0o644); err != nil {
		return err
	}
	tag, _ := name.NewTag(ref)
	digest, _ := imgs.Albdrain.Digest()
	chartPath, err := helmchart.Package(out, o.version, helmchart.Pin{
		Repository:  tag.Context().Name(),
		Tag:         o.version,
		Digest:      digest.String(),
		HelperImage: vals["hold"].(map[string]any)["helperImage"].(string),
	})
	if err != nil {
		return err
	}
	if o.push {
		for _, e := range entries {
			if err := image.PushIndex(e.Ref, e.Index); err != nil {
				return err
			}
		}
	}
	helperDigest, _ := imgs.Helper.Digest()
	fmt.Printf("release %s (%s) in %s:\n  image  %s@%s\n  helper %s@%s\n  chart  %s\n  sbom   %s\n  oci    %s\n",
		o.version, strings.Join(image.Arches, ", "), o.out, ref, digest, helperRef, helperDigest,
		chartPath, filepath.Join(out, "albdrain.spdx.json"), filepath.Join(out, "oci"))
	return nil
}

// chartAppVersion reads the chart's appVersion.
func chartAppVersion() (string, error) {
	dir, err := helmchart.Dir()
	if err != nil {
		return "", err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return "", err
	}
	if c.AppVersion == "" {
		return "", fmt.Errorf("%s/Chart.yaml has no appVersion", dir)
	}
	return c.AppVersion, nil
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
