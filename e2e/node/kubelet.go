package node

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"text/template"

	"k8s.io/client-go/tools/clientcmd"
)

// kubeletConfig is the real kubelet's configuration. Each setting away from
// the defaults keeps the host as it was or fits this machine:
//   - failCgroupV1: false: the machines run a cgroup v1 hybrid layout; the
//     kubelet warns and still applies limits.
//   - makeIPTablesUtilChains: false: no iptables chains of the kubelet's.
//   - protectKernelDefaults: true: the kubelet checks its sysctls instead of
//     setting them (its mount namespace shows it the values it expects).
//   - cgroupRoot: the pods' cgroups stay under a root of this node's.
//   - image GC off: the imported images cannot be pulled again.
//   - eviction thresholds near zero: a busy shared disk must not evict the test's pods.
var kubeletConfig = template.Must(template.New("kubelet").Parse(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://{{.Socket}}
cgroupDriver: cgroupfs
cgroupRoot: /{{.CgroupRoot}}
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: true
address: {{.NodeIP}}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
podLogsDir: {{.PodLogs}}
resolvConf: {{.ResolvConf}}
{{- if .ClusterDNS}}
clusterDNS: [{{.ClusterDNS}}]
clusterDomain: {{.ClusterDomain}}
{{- end}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
serializeImagePulls: false
`))

// kubeletSysctls are the values the kubelet expects with protectKernelDefaults;
// its mount namespace shows it these through bind mounts over /proc/sys.
var kubeletSysctls = map[string]string{
	"vm/overcommit_memory":      "1",
	"vm/panic_on_oom":           "0",
	"kernel/panic":              "10",
	"kernel/panic_on_oops":      "1",
	"kernel/keys/root_maxkeys":  "1000000",
	"kernel/keys/root_maxbytes": "25000000",
}

// startKubelet writes the kubelet's files and starts it.
func (n *Node) startKubelet(kubeconfig []byte, apiserver string) error {
	dir := filepath.Join(n.Dir, "kubelet")
	for _, d := range []string{filepath.Join(dir, "root"), filepath.Join(dir, "sysctl"), filepath.Join(n.Dir, "pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, apiserver, kubeconfigPath); err != nil {
		return err
	}
	resolvConf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolvConf, n.resolvConf, 0o644); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := kubeletConfig.Execute(&buf, map[string]any{
		"Socket": n.ContainerdSocket, "CgroupRoot": n.cgroupRoot, "NodeIP": n.Net.NodeIP.String(),
		"PodLogs": filepath.Join(n.Dir, "pod-logs"), "ResolvConf": resolvConf,
		"ClusterDNS": n.clusterDNS, "ClusterDomain": ClusterDomain,
	}); err != nil {
		return err
	}
	configPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(configPath, buf.Bytes(), 0o644); err != nil {
		return err
	}
	// The kubelet writes to /var/lib/kubelet/device-plugins and
	// /var/log/containers whatever its root dir: tmpfs over /var/lib and
	// /var/log in its mount namespace keeps those writes off the host.
	setup := []string{"mount -t tmpfs albdrain-node /var/lib", "mount -t tmpfs albdrain-node /var/log"}
	for name, value := range kubeletSysctls {
		f := filepath.Join(dir, "sysctl", filepath.Base(name))
		if err := os.WriteFile(f, []byte(value+"\n"), 0o444); err != nil {
			return err
		}
		setup = append(setup, fmt.Sprintf("mount --bind %s /proc/sys/%s", f, name))
	}
	p, err := n.startInNode("kubelet", setup, n.assets.kubelet,
		"--config="+configPath,
		"--kubeconfig="+kubeconfigPath,
		"--root-dir="+filepath.Join(dir, "root"),
		"--hostname-override="+n.Name,
		"--node-ip="+n.Net.NodeIP.String(),
	)
	if err != nil {
		return err
	}
	n.kubelet = p
	return nil
}

// writeKubeconfig writes kubeconfig to path, pointed at the apiserver
// through the node's forwarder.
func writeKubeconfig(kubeconfig []byte, apiserver, path string) error {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + apiserver
		// The apiserver's certificate names localhost; the node reaches it through the forwarder.
		c.TLSServerName = "localhost"
	}
	return clientcmd.WriteToFile(*cfg, path)
}
