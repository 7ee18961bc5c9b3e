// Command image builds albdrain's container image without a container engine:
// it compiles the static manager and helper, writes the image as an OCI
// archive that `ctr images import` (or `docker load`) reads, and pushes it to
// a registry when -push is set.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/albdrain/albdrain/e2e/image"
)

func main() {
	var (
		tag    = flag.String("tag", "ghcr.io/albdrain/albdrain:dev", "image reference")
		out    = flag.String("o", "bin/albdrain-image.tar", "OCI archive to write (empty: none)")
		push   = flag.Bool("push", false, "also push the image to the registry of -tag")
		root   = flag.String("root", ".", "albdrain's module root")
		goBin  = flag.String("go", "go", "go command")
		binDir = flag.String("bin", "bin/image", "where the static binaries are built")
	)
	flag.Parse()
	if err := run(context.Background(), *root, *goBin, *binDir, *tag, *out, *push); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, root, goBin, binDir, tag, out string, push bool) error {
	if out == "" && !push {
		return fmt.Errorf("nothing to do: set -o or -push")
	}
	binDir, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	if err := image.GoBuild(ctx, goBin, root, binDir, "./cmd/albdrain", "./cmd/albdrain-hold"); err != nil {
		return err
	}
	img, err := image.Build(image.Albdrain(binDir))
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if out != "" {
		if err := image.WriteArchive(out, tag, img); err != nil {
			return err
		}
		fmt.Printf("wrote %s (%s, %s)\n", out, tag, digest)
	}
	if push {
		if err := image.Push(tag, img); err != nil {
			return err
		}
		fmt.Printf("pushed %s@%s\n", tag, digest)
	}
	return nil
}
