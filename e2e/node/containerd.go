package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"

	"github.com/albdrain/albdrain/e2e/kubetest"
)

// PauseImage is the sandbox image the node's containerd pins; Start builds it
// from package pause and imports it.
const PauseImage = "albdrain.test/pause:v1"

// containerdConfig keeps everything of containerd's under one folder of the
// test's, with no imports from /etc, and turns off what this machine lacks:
// NRI, the snapshotters other than overlayfs, and lowering oom_score_adj
// (the VM's bounding set has no CAP_SYS_RESOURCE).
var containerdConfig = template.Must(template.New("containerd").Parse(`version = 4
root = '{{.Dir}}/root'
state = '{{.Dir}}/state'
imports = []
disabled_plugins = [
  'io.containerd.nri.v1.nri',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.erofs',
  'io.containerd.differ.v1.erofs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
]

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = '{{.Socket}}'
  [plugins.'io.containerd.server.v1.ttrpc']
    address = '{{.Socket}}.ttrpc'
  [plugins.'io.containerd.server.v1.debug']
    address = ''
  [plugins.'io.containerd.internal.v1.opt']
    path = '{{.Dir}}/opt'
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = '{{.Dir}}/s'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{{.Pause}}'
  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '{{.Runc}}'
          Root = '{{.Dir}}/runc'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{{.CNIBin}}']
      conf_dir = '{{.CNIConf}}'
      max_conf_num = 1
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '{{.NodeIP}}'
`))

// cniConfig is the pods' network: the test's bridge, host-local addresses in
// the pod range, and routes to the host's end of the veth and to the
// Service range (which kube-proxy, when it runs, translates in the node's
// namespace); no default route, no masquerading, so pods reach nothing but
// the test's subnet.
var cniConfig = template.Must(template.New("cni").Parse(`{
  "cniVersion": "1.0.0",
  "name": "albdrain-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "{{.Bridge}}",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "{{.IPAMDir}}",
        "ranges": [[{"subnet": "{{.PodRange}}", "rangeStart": "{{.RangeStart}}", "gateway": "{{.Gateway}}"}]],
        "routes": [{"dst": "{{.HostRoute}}", "gw": "{{.Gateway}}"}, {"dst": "{{.ServiceCIDR}}", "gw": "{{.Gateway}}"}]
      }
    },
    {"type": "loopback"}
  ]
}
`))

// containerdFiles writes containerd's and CNI's configuration under dir.
func (n *Node) containerdFiles() error {
	dir := filepath.Join(n.Dir, "containerd")
	cniConf := filepath.Join(n.Dir, "cni", "net.d")
	for _, d := range []string{dir, cniConf} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var cfg bytes.Buffer
	if err := containerdConfig.Execute(&cfg, map[string]string{
		"Dir": dir, "Socket": n.ContainerdSocket, "Pause": PauseImage, "Runc": n.assets.runc,
		"CNIBin": n.assets.cniBin, "CNIConf": cniConf, "NodeIP": n.Net.NodeIP.String(),
	}); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), cfg.Bytes(), 0o644); err != nil {
		return err
	}
	b := n.Net.PodRange.Addr().As4()
	var cni bytes.Buffer
	if err := cniConfig.Execute(&cni, map[string]string{
		"Bridge": BridgeName, "IPAMDir": filepath.Join(n.Dir, "cni", "ipam"), "PodRange": n.Net.PodRange.String(),
		"RangeStart": fmt.Sprintf("%d.%d.%d.10", b[0], b[1], b[2]), "Gateway": n.Net.Bridge.String(),
		"HostRoute": n.Net.PodRoute.String(), "ServiceCIDR": kubetest.ServiceCIDR,
	}); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cniConf, "10-albdrain.conflist"), cni.Bytes(), 0o644)
}

// Ctr runs ctr against the node's containerd in the Kubernetes namespace.
func (n *Node) Ctr(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"-a", n.ContainerdSocket, "-n", "k8s.io"}, args...)
	out, err := exec.CommandContext(ctx, n.assets.ctr, full...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ctr %v: %w: %s", args, err, out)
	}
	return out, nil
}

// ImportImage loads an OCI archive into the node's containerd, where pods
// with imagePullPolicy Never find it.
func (n *Node) ImportImage(ctx context.Context, archive string) error {
	_, err := n.Ctr(ctx, "images", "import", archive)
	return err
}
