package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/e2e/ports"
	"github.com/albdrain/albdrain/internal/contract"
)

// replicaAppID is replica i's SDK application id, which the emulator's
// call log shows in each call's User-Agent: it tells the replicas apart.
func replicaAppID(i int) string { return "albdrain-r" + strconv.Itoa(i) }

// replica is one of the rotation's manager processes.
type replica struct {
	*managerProcess
	// holdURL is where its pods' helpers reach it, over HTTPS.
	holdURL string
	// cpuStart is its CPU time when the drain began.
	cpuStart float64
}

// startReplicas runs n manager binaries against elbv2URL, each with its own
// ports and the chart's flags, sharing polls as share says: their hold
// endpoints serve the self-signed certificate for 127.0.0.1 (the peers'
// and the helpers' CA), they present a token the apiserver issued the
// chart's ServiceAccount for albdrain's audience, and they find each other
// through Leases in the chart's namespace. Each calls ELBv2 with an SDK
// application id of its own.
func startReplicas(ctx context.Context, m *managerSetup, cl client.Client, n int, share bool, elbv2URL, name string) (_ []*replica, err error) {
	token, err := writeBenchPeerToken(ctx, cl, filepath.Join(m.dir, "albdrain-peer-token"))
	if err != nil {
		return nil, err
	}
	var rs []*replica
	defer func() {
		if err != nil {
			err = errors.Join(err, stopReplicas(rs))
		}
	}()
	for i := range n {
		var wport, hport int
		for _, p := range []*int{&wport, &hport} {
			if *p, err = ports.Reserve(); err != nil {
				return nil, err
			}
		}
		hold := "127.0.0.1:" + strconv.Itoa(hport)
		p, err := m.startWith(ctx, fmt.Sprintf("%s-r%d", name, i), map[string]string{
			"webhook-port":      strconv.Itoa(wport),
			"hold-bind-address": hold,
			"hold-cert-dir":     m.certDir,
			"watcher-url":       "https://" + hold,
			"watcher-ca-file":   filepath.Join(m.certDir, "tls.crt"),
			"aws-endpoint-url":  elbv2URL,
			"share-polls":       strconv.FormatBool(share),
			"peer-token-file":   token,
			"pod-namespace":     cluster.Namespace,
			// The hold address names the replica to its peers.
			"pod-ip": "",
		}, []string{"AWS_SDK_UA_APP_ID=" + replicaAppID(i)})
		if err != nil {
			return nil, err
		}
		rs = append(rs, &replica{managerProcess: p, holdURL: "https://" + hold})
	}
	return rs, nil
}

func stopReplicas(rs []*replica) error {
	var errs []error
	for _, r := range rs {
		errs = append(errs, r.stop())
	}
	return errors.Join(errs...)
}

// writeBenchPeerToken asks the apiserver for a token of the chart's
// ServiceAccount for albdrain's audience, as the kubelet projects it into
// the manager's pods, and writes it to path.
func writeBenchPeerToken(ctx context.Context, c client.Client, path string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: cluster.Namespace, Name: helmchart.ReleaseName}}
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{contract.TokenAudience}, ExpirationSeconds: ptr.To[int64](24 * 3600)}}
	if err := c.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", fmt.Errorf("peer token: %w", err)
	}
	return path, os.WriteFile(path, []byte(tr.Status.Token), 0o600)
}

// usage reads the process's CPU time and peak RSS from /proc.
func (p *managerProcess) usage() (cpuSeconds, hwmMiB float64, err error) {
	pid := p.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	if cpuSeconds, err = cpuOfStat(string(stat)); err != nil {
		return 0, 0, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	hwmMiB, err = statusKiB(string(status), "VmHWM")
	return cpuSeconds, hwmMiB / 1024, err
}
