package node

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/e2e/clusterdns"
	"github.com/albdrain/albdrain/e2e/kubetest"
)

// ClusterDomain is the DNS domain of the node's pods.
const ClusterDomain = "cluster.local"

// ClusterDNSIP is the ClusterIP of the kube-system/kube-dns Service, the
// name server in pods' resolv.conf.
const ClusterDNSIP = "10.0.0.10"

// kubeProxyConfig runs kube-proxy in nftables mode in the node's network
// namespace, so its rules live there only. Each setting away from the
// defaults keeps the host as it was:
//   - conntrack sizes and timeouts 0: kube-proxy leaves the (partly
//     host-wide) conntrack sysctls alone;
//   - oomScoreAdj 0: this VM cannot lower it;
//   - clusterCIDR: traffic from pods keeps its source address (albdrain's
//     hold endpoint checks that its caller is the pod it names), traffic
//     from elsewhere is masqueraded, as in a cluster.
var kubeProxyConfig = template.Must(template.New("kube-proxy").Parse(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {{.Kubeconfig}}
mode: nftables
hostnameOverride: {{.Name}}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: {{.PodRange}}
detectLocalMode: ClusterCIDR
oomScoreAdj: 0
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`))

// startServices makes Services work for the node's pods as in a cluster:
// kube-proxy translates ClusterIPs in the node's namespace, the kubernetes
// Service leads to the apiserver (through the node's forwarder, as the
// apiserver listens on loopback) and the kube-dns Service to a cluster DNS
// stand-in (package clusterdns) on the host's end of the veth. env must run
// with kubetest.WithInClusterClients. Only the first node behind a Router
// publishes those two Services (clusterWide); every node runs kube-proxy.
func (n *Node) startServices(ctx context.Context, env *kubetest.Env, clusterWide bool) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("kube-proxy's nftables mode needs nft: .ci/run installs Debian's nftables: %w", err)
	}
	// Pods' Service traffic to pods on the same bridge is answered straight
	// over the bridge; it needs the bridge's netfilter hooks in the node's
	// namespace (per namespace since Linux 5.3) to be translated back.
	if err := run("ip", "netns", "exec", n.Net.Name, "sh", "-c", "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		return fmt.Errorf("the node's Services need br_netfilter in the kernel: %w", err)
	}
	if !clusterWide {
		return n.startKubeProxy(ctx, env)
	}
	fwd, err := netip.ParseAddrPort(n.forwarder.Addr())
	if err != nil {
		return err
	}
	if err := publishEndpoint(ctx, env.Client, "default", "kubernetes", "https", corev1.ProtocolTCP, n.Net.HostIP, fwd.Port()); err != nil {
		return err
	}
	dns, err := clusterdns.Start(n.Net.HostIP.String()+":0", env.Client, ClusterDomain)
	if err != nil {
		return err
	}
	n.undo = append(n.undo, dns.Close)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system"},
		Spec:       corev1.ServiceSpec{ClusterIP: ClusterDNSIP, Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}},
	}
	if err := env.Client.Create(ctx, svc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kube-dns Service: %w", err)
	}
	if err := publishEndpoint(ctx, env.Client, "kube-system", "kube-dns", "dns", corev1.ProtocolUDP, n.Net.HostIP, dns.Addr().Port()); err != nil {
		return err
	}
	return n.startKubeProxy(ctx, env)
}

// publishEndpoint writes an EndpointSlice of the selectorless Service
// namespace/name with one endpoint.
func publishEndpoint(ctx context.Context, c client.Client, namespace, name, port string, proto corev1.Protocol, ip netip.Addr, number uint16) error {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-node", Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "albdrain.test-node",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(port), Protocol: ptr.To(proto), Port: ptr.To(int32(number))}},
	}
	if err := c.Create(ctx, slice); err != nil {
		return fmt.Errorf("endpoints of %s/%s: %w", namespace, name, err)
	}
	return nil
}

// startKubeProxy starts kube-proxy as the user its bootstrap RBAC names and
// waits until it has written its rules.
func (n *Node) startKubeProxy(ctx context.Context, env *kubetest.Env) error {
	user, err := env.Environment.AddUser(envtest.User{Name: "system:kube-proxy"}, nil)
	if err != nil {
		return fmt.Errorf("provision kube-proxy's user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	dir := filepath.Join(n.Dir, "kube-proxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, n.forwarder.Addr(), kubeconfigPath); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := kubeProxyConfig.Execute(&buf, map[string]string{
		"Kubeconfig": kubeconfigPath, "Name": n.Name, "PodRange": n.Net.ClusterPods.String(),
	}); err != nil {
		return err
	}
	configPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(configPath, buf.Bytes(), 0o644); err != nil {
		return err
	}
	p, err := n.startInNode("kube-proxy", nil, n.assets.kubeProxy, "--config="+configPath)
	if err != nil {
		return err
	}
	n.undo = append(n.undo, func() error { return p.stop(10 * time.Second) })
	// kube-proxy's healthz answers 200 from its start, so the rules
	// themselves tell when it has synced: a chain for each Service above.
	var table []byte
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		table, _ = exec.CommandContext(ctx, "ip", "netns", "exec", n.Net.Name, "nft", "list", "table", "ip", "kube-proxy").CombinedOutput()
		return bytes.Contains(table, []byte("default/kubernetes/tcp/https")) && bytes.Contains(table, []byte("kube-system/kube-dns/udp/dns")), nil
	})
	if err != nil {
		return fmt.Errorf("kube-proxy never wrote rules for the kubernetes and kube-dns Services: %w (log: %s; its table: %s)", err, p.logPath, table)
	}
	return nil
}
