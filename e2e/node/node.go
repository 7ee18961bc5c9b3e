// Package node runs a real Kubernetes node for tests: the kubelet,
// kube-proxy and containerd built by `make node-assets`, runc and the CNI
// plugins from the distribution, in a network namespace of the test's with
// a bridge for pod addresses on a private subnet. Several nodes can sit
// behind one Router (OnRouter), as a cluster's nodes do. WithServices adds
// kube-proxy (nftables rules in the node's namespace only) and a cluster
// DNS stand-in, so pods reach Services by name as in a cluster. The node
// leaves the machine as it found it: Stop (also on a failed start) kills
// what it started and removes its mounts, cgroups, namespace (with its
// rules), routes and files.
package node

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/e2e/image"
	"github.com/albdrain/albdrain/e2e/kubetest"
)

// Node is a running real node.
type Node struct {
	// Name is the Node object's name.
	Name string
	// Dir holds every file of the node's; it is a shared mount while the node runs.
	Dir string
	// Net is the node's network.
	Net *Network
	// ContainerdSocket is containerd's gRPC socket.
	ContainerdSocket string

	assets     assets
	cgroupRoot string
	resolvConf []byte
	forwarder  *forwarder
	containerd *process
	kubelet    *process
	// clusterDNS is the name server of pods' resolv.conf, when Services work.
	clusterDNS string
	undo       []func() error
	// reaped release the undo steps' shell forms from the reaper.
	reaped []func()
}

// Option changes what Start sets up.
type Option func(*options)

type options struct {
	services bool
	router   *Router
}

// WithServices makes Services work for the node's pods as in a cluster:
// kube-proxy, the kubernetes Service leading to the apiserver, and cluster
// DNS (a stand-in). The apiserver must run with
// kubetest.WithInClusterClients. One node per apiserver can have them, or
// every node behind one Router: the kubernetes and kube-dns Services lead
// to the host's end of the node's (or the router's) veth.
func WithServices() Option { return func(o *options) { o.services = true } }

// OnRouter puts the node behind r, beside the other nodes there, instead of
// joining it to the host by a veth pair of its own.
func OnRouter(r *Router) Option { return func(o *options) { o.router = r } }

// assets are the node's binaries.
type assets struct {
	kubelet, kubeProxy, containerdDir, ctr, runc, cniBin string
}

func findAssets() (assets, error) {
	a := assets{
		kubelet:       filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubelet"),
		kubeProxy:     filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kube-proxy"),
		containerdDir: os.Getenv("ALBDRAIN_CONTAINERD_ASSETS"),
		runc:          "/usr/sbin/runc",
		cniBin:        "/usr/lib/cni",
	}
	a.ctr = filepath.Join(a.containerdDir, "ctr")
	var missing []string
	for _, f := range []string{a.kubelet, a.kubeProxy, a.ctr, filepath.Join(a.containerdDir, "containerd"),
		filepath.Join(a.containerdDir, "containerd-shim-runc-v2"), a.runc, filepath.Join(a.cniBin, "bridge"),
		filepath.Join(a.cniBin, "host-local"), filepath.Join(a.cniBin, "loopback")} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return a, fmt.Errorf("the real node needs %s: run through `make test` (make node-assets builds kubelet, kube-proxy and containerd; .ci/run installs runc and containernetworking-plugins)", strings.Join(missing, ", "))
	}
	return a, nil
}

// Start brings up a node registered with env's apiserver, imports the pause
// image and waits for the node to be Ready. The test fails if the node
// cannot run here (missing binaries, not root) rather than skipping, so a
// CI run cannot pass by testing nothing. Stop runs at cleanup.
func Start(t testing.TB, env *kubetest.Env, opts ...Option) *Node {
	t.Helper()
	n, err := Run(env, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop node: %v", err)
		}
	})
	return n
}

// Run brings up a node as Start does, outside a test; call Stop when done.
func Run(env *kubetest.Env, opts ...Option) (_ *Node, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the real node needs root (network and mount namespaces, cgroups)")
	}
	a, err := findAssets()
	if err != nil {
		return nil, err
	}
	// Short: unix socket paths under it must stay within 108 bytes.
	dir, err := os.MkdirTemp("/tmp", "albnode-")
	if err != nil {
		return nil, err
	}
	n := &Node{Dir: dir, assets: a, ContainerdSocket: filepath.Join(dir, "containerd.sock")}
	n.undo = append(n.undo, func() error { return os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Stop())
		}
	}()
	if err := n.onDeath(removeDirCommand(dir)); err != nil {
		return nil, err
	}
	if err := shareDir(dir); err != nil {
		return nil, err
	}
	n.undo = append(n.undo, func() error { return unmountUnder(dir) })

	if o.router != nil {
		n.Net, err = o.router.attach()
	} else {
		n.Net, err = newNetwork()
	}
	if err != nil {
		return nil, err
	}
	n.undo = append(n.undo, n.Net.remove)
	if err := n.onDeath(removeNetnsCommand(n.Net.Name, n.Net.hostLink)); err != nil {
		return nil, err
	}
	n.Name = n.Net.Name
	n.cgroupRoot = n.Net.Name
	cgroupCmd, err := removeCgroupRootCommand(n.cgroupRoot)
	if err != nil {
		return nil, err
	}
	if err := n.onDeath(cgroupCmd); err != nil {
		return nil, err
	}
	if err := makeCgroupRoot(n.cgroupRoot); err != nil {
		return nil, err
	}
	n.undo = append(n.undo, func() error { return removeCgroupRoot(n.cgroupRoot) })
	// No name server: pods get an empty resolv.conf rather than the host's,
	// or the cluster DNS when Services work.
	n.resolvConf = []byte("# albdrain test node: no name server\n")
	if o.services {
		n.clusterDNS = ClusterDNSIP
	}

	if err := n.containerdFiles(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := n.startContainerd(ctx); err != nil {
		return nil, err
	}
	if err := n.importPause(ctx); err != nil {
		return nil, err
	}
	if err := n.startKubeletFor(env); err != nil {
		return nil, err
	}
	if err := n.waitReady(ctx, env.Client); err != nil {
		return nil, err
	}
	if o.services {
		if err := n.startServices(ctx, env, o.router == nil || o.router.claimServices()); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// startContainerd starts containerd with a tmpfs over /var/lib in its mount
// namespace (the CNI library caches results in /var/lib/cni whatever the
// configuration) and waits for its socket to answer.
func (n *Node) startContainerd(ctx context.Context) error {
	p, err := n.startInNode("containerd", []string{"mount -t tmpfs albdrain-node /var/lib"},
		filepath.Join(n.assets.containerdDir, "containerd"), "--config", filepath.Join(n.Dir, "containerd", "config.toml"))
	if err != nil {
		return err
	}
	n.containerd = p
	n.undo = append(n.undo, n.stopContainerd)
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		_, err := n.Ctr(ctx, "version")
		return err == nil, nil
	})
}

// importPause builds the sandbox image from package pause and imports it
// under the name containerd's configuration pins.
func (n *Node) importPause(ctx context.Context) error {
	bin := filepath.Join(n.Dir, "images")
	if err := image.GoBuild(ctx, "go", ".", bin, "github.com/albdrain/albdrain/e2e/node/pause"); err != nil {
		return err
	}
	img, err := image.Build(image.Spec{
		Files:      []image.File{{Path: "/pause", Source: filepath.Join(bin, "pause")}},
		User:       "65535:65535",
		Entrypoint: []string{"/pause"},
	})
	if err != nil {
		return err
	}
	archive := filepath.Join(bin, "pause.tar")
	if err := image.WriteArchive(archive, PauseImage, img); err != nil {
		return err
	}
	return n.ImportImage(ctx, archive)
}

// startKubeletFor provisions the kubelet's user in env, forwards the
// apiserver to the node's namespace and starts the kubelet.
func (n *Node) startKubeletFor(env *kubetest.Env) error {
	user, err := env.Environment.AddUser(envtest.User{Name: "system:node:" + n.Name, Groups: []string{"system:masters", "system:nodes"}}, nil)
	if err != nil {
		return fmt.Errorf("provision the kubelet's user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	u, err := url.Parse(env.Config.Host)
	if err != nil || u.Host == "" {
		return fmt.Errorf("apiserver address %q: %v", env.Config.Host, err)
	}
	fwd, err := newForwarder(n.Net.HostIP.String()+":0", u.Host)
	if err != nil {
		return err
	}
	n.forwarder = fwd
	n.undo = append(n.undo, fwd.Close)
	if err := n.startKubelet(kubeconfig, fwd.Addr()); err != nil {
		return err
	}
	n.undo = append(n.undo, n.stopKubelet)
	return nil
}

// waitReady waits for the Node object to report Ready.
func (n *Node) waitReady(ctx context.Context, c client.Client) error {
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := n.kubelet.exited(); err != nil {
			return false, err
		}
		var node corev1.Node
		if err := c.Get(ctx, client.ObjectKey{Name: n.Name}, &node); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready: %w (kubelet log: %s)", n.Name, err, n.logPath("kubelet"))
	}
	return nil
}

func (n *Node) stopKubelet() error { return n.kubelet.stop(30 * time.Second) }

// stopContainerd kills the pods' processes (their cgroups are under the
// node's root), then the shims, then containerd.
func (n *Node) stopContainerd() error {
	errs := []error{removeCgroupRoot(n.cgroupRoot)}
	errs = append(errs, killShims(filepath.Join(n.assets.containerdDir, "containerd-shim-runc-v2"), n.Net.Name))
	errs = append(errs, n.containerd.stop(10*time.Second))
	return errors.Join(errs...)
}

// Stop undoes everything Start did, in reverse order, and reports every
// step that failed. Logs are copied first to LogDir when it is set.
func (n *Node) Stop() error {
	var errs []error
	n.keepLogs()
	for i := len(n.undo) - 1; i >= 0; i-- {
		errs = append(errs, n.undo[i]())
	}
	n.undo = nil
	err := errors.Join(errs...)
	if err == nil {
		// Else the reaper tries again when the test process ends.
		for _, release := range n.reaped {
			release()
		}
		n.reaped = nil
	}
	return err
}

// logPath is where a daemon of the node logs.
func (n *Node) logPath(name string) string { return filepath.Join(n.Dir, name+".log") }

// LogDir, when set (ALBDRAIN_NODE_LOGS), receives the node's daemon logs when it stops.
var LogDir = os.Getenv("ALBDRAIN_NODE_LOGS")

func (n *Node) keepLogs() {
	if LogDir == "" || n.Name == "" {
		return
	}
	dst := filepath.Join(LogDir, n.Name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	for _, name := range []string{"kubelet", "containerd", "kube-proxy"} {
		_ = exec.Command("cp", n.logPath(name), dst).Run()
	}
}
