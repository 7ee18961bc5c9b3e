//go:build tools

// Package containerd pins the container runtime of the tests' real node:
// containerd, its ctr client and the runc shim.
package containerd

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
