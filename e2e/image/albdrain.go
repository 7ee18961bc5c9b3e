package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Where albdrain's binaries sit in its image. The chart runs the manager
// through the entrypoint and names the helper in --helper-image-path; tests
// check both against the chart's values and the webhook's default flag.
const (
	ManagerPath = "/albdrain"
	HelperPath  = "/albdrain-hold"
	// User is distroless's nonroot user, which the chart's securityContext names.
	User = "65532:65532"
)

// Albdrain is the spec of albdrain's image, with the manager and helper
// binaries taken from binDir (as GoBuild writes them).
func Albdrain(binDir string) Spec {
	return Spec{
		Files: []File{
			{Path: ManagerPath, Source: filepath.Join(binDir, "albdrain")},
			{Path: HelperPath, Source: filepath.Join(binDir, "albdrain-hold")},
		},
		User:       User,
		Entrypoint: []string{ManagerPath},
	}
}

// Helper is the spec of the helper image, which the webhook's init container
// runs in every managed pod (hold.helperImage): the helper alone, at the
// same path as in albdrain's image, so that every node pulls a few MB
// instead of the manager too.
func Helper(binDir string) Spec {
	return Spec{
		Files:      []File{{Path: HelperPath, Source: filepath.Join(binDir, "albdrain-hold")}},
		User:       User,
		Entrypoint: []string{HelperPath},
	}
}

// GoBuild compiles the main packages pkgs of the module at moduleDir into
// outDir, static (no cgo) and without local paths, as an image needs them:
// the helper in particular is copied into application images of any base.
func GoBuild(ctx context.Context, goBin, moduleDir, outDir string, pkgs ...string) error {
	return GoBuildArch(ctx, goBin, moduleDir, outDir, runtime.GOARCH, pkgs...)
}

// GoBuildArch is GoBuild for the architecture goarch (a GOARCH): Go
// cross-compiles static binaries without an emulator.
func GoBuildArch(ctx context.Context, goBin, moduleDir, outDir, goarch string, pkgs ...string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(outDir)
	if err != nil {
		return err
	}
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", abs + "/"}, pkgs...)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}
