package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// HelperPackage is albdrain's in-pod helper, the binary albdrain-init
// installs into pods.
const HelperPackage = "github.com/albdrain/albdrain/cmd/albdrain-hold"

// BuildHelper builds the helper into dir with the go command goCmd (a name
// looked up in PATH, or a path), static as in albdrain's image. The working
// directory must be inside albdrain's module, as it is for its tests and
// for `go run`.
func BuildHelper(ctx context.Context, goCmd, dir string) (string, error) {
	goBin, err := exec.LookPath(goCmd)
	if err != nil {
		return "", fmt.Errorf("building the albdrain-hold helper needs the go command: %w", err)
	}
	out := filepath.Join(dir, "albdrain-hold")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, HelperPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", HelperPackage, err, b)
	}
	return out, nil
}
