package node_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/image"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/node"
)

const (
	albdrainRef = "albdrain.test/albdrain:e2e"
	podappRef   = "albdrain.test/podapp:e2e"
)

// nodeSetup says what a test needs around its real node.
type nodeSetup struct {
	// targetGroupBindings installs the TargetGroupBinding CRD.
	targetGroupBindings bool
	// services makes Services work for the node's pods (node.WithServices):
	// the apiserver serves clients in pods and, where controllers run, the
	// cluster's CA is published for their tokens.
	services bool
	// endpointSlices runs a kube-controller-manager with cluster.Controllers
	// and the EndpointSlice controller, controllerFlags added to its command line.
	endpointSlices  bool
	controllerFlags []string
	// albdrain imports albdrain's image (albdrainRef) besides the test application's.
	albdrain bool
}

// realNode is a real node registered with an apiserver of its own, the
// test application's image (podappRef) imported, and what the test's
// nodeSetup asked for; all of it stops at the test's cleanup.
type realNode struct {
	env *kubetest.Env
	n   *node.Node
	// albdrainDigest is the digest of albdrain's image, when imported.
	albdrainDigest string
}

func startRealNode(t *testing.T, s nodeSetup) *realNode {
	t.Helper()
	var apiserver []kubetest.Option
	var nodeOpts []node.Option
	controllers := append(slices.Clone(cluster.Controllers), cluster.EndpointSliceController)
	if s.targetGroupBindings {
		apiserver = append(apiserver, kubetest.WithTargetGroupBindingCRD())
	}
	if s.services {
		apiserver = append(apiserver, kubetest.WithInClusterClients())
		nodeOpts = append(nodeOpts, node.WithServices())
		controllers = append(controllers, "root-ca-certificate-publisher-controller")
	}
	env := kubetest.Start(t, apiserver...)
	if s.endpointSlices {
		cm, err := cluster.StartControllerManagerWithFlags(env, t.TempDir(), s.controllerFlags, controllers...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := cm.Stop(); err != nil {
				t.Logf("stop kube-controller-manager: %v (log: %s)", err, cm.LogPath)
			}
		})
	}
	n := node.Start(t, env, nodeOpts...)
	return &realNode{env: env, n: n, albdrainDigest: importImages(t, s.albdrain, n)}
}

// emulator starts the ALB emulator with o, its targets on the node's subnet.
func (r *realNode) emulator(t *testing.T, o albemu.Options) *albemu.Emulator {
	t.Helper()
	o.TargetSubnet = r.n.Net.Subnet
	return albemu.NewForTest(t, o)
}

// loadBalancerController starts the load balancer controller's stand-in
// with o, on EndpointSlices, calling emu through the AWS SDK.
func (r *realNode) loadBalancerController(t *testing.T, emu *albemu.Emulator, o fakelbc.Options) {
	t.Helper()
	o.ELBv2, o.EC2 = fakelbc.Clients(emu.URL())
	o.EndpointSlices = true
	ctl, err := fakelbc.Start(t.Context(), r.env.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
}

// importImages builds the test application's image and, when withAlbdrain,
// albdrain's, and loads them into the nodes; it returns albdrain's image
// digest.
func importImages(t *testing.T, withAlbdrain bool, nodes ...*node.Node) string {
	t.Helper()
	ctx := context.Background()
	bin := t.TempDir()
	if err := image.GoBuild(ctx, "go", ".", bin, "github.com/albdrain/albdrain/e2e/node/podapp"); err != nil {
		t.Fatal(err)
	}
	images := map[string]image.Spec{podappRef: {
		Files: []image.File{{Path: "/podapp", Source: filepath.Join(bin, "podapp")}},
		User:  "65532:65532", Entrypoint: []string{"/podapp"},
	}}
	if withAlbdrain {
		if err := image.GoBuild(ctx, "go", "../..", bin, "./cmd/albdrain", "./cmd/albdrain-hold"); err != nil {
			t.Fatal(err)
		}
		images[albdrainRef] = image.Albdrain(bin)
	}
	var digest string
	for ref, spec := range images {
		img, err := image.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		archive := filepath.Join(bin, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
		if err := image.WriteArchive(archive, ref, img); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if err := n.ImportImage(ctx, archive); err != nil {
				t.Fatal(err)
			}
		}
		if ref == albdrainRef {
			d, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			digest = d.String()
		}
	}
	return digest
}
