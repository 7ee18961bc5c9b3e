package node_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/cluster"
	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/node"
)

// installAlbdrain installs albdrain as a user does: every object its chart
// renders, in Helm's order, with the manager's Deployment running albdrain's
// image on the real node. Two things differ from a cluster, both named here:
//   - the Deployment's pod template gets the node's name: there is no
//     kube-scheduler;
//   - its container gets static AWS credentials for the emulator in its
//     environment, where a cluster has IRSA or EKS Pod Identity.
//
// Certificates are the chart's default (the manager issues its own and
// injects the CA into the webhook configuration); the apiserver calls the
// webhook through its Service, and the helper reaches the watcher through
// its Service's DNS name, as the chart's --watcher-url says.
func installAlbdrain(t *testing.T, env *kubetest.Env, n *node.Node, tm cluster.Timings, elbv2URL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	vals := cluster.ChartValues(tm, "us-east-1", elbv2URL, "")
	vals["image"] = map[string]any{"repository": "albdrain.test/albdrain", "tag": "e2e", "pullPolicy": "Never"}
	vals["replicaCount"] = 1
	delete(vals, "certificates")
	m, err := helmchart.Render(cluster.Namespace, vals)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.InstallRBAC(ctx, env.Client, cluster.Namespace); err != nil {
		t.Fatal(err)
	}
	for _, o := range m.Objects {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			continue
		case "Deployment":
			o = o.DeepCopy()
			if err := onNode(o, n.Name); err != nil {
				t.Fatal(err)
			}
		}
		if err := env.Client.Create(ctx, o.DeepCopy()); err != nil {
			t.Fatalf("install %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	var last string
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var dep appsv1.Deployment
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: helmchart.ReleaseName}, &dep); err != nil {
			return false, err
		}
		var wh admissionv1.MutatingWebhookConfiguration
		if err := env.Client.Get(ctx, client.ObjectKey{Name: helmchart.ReleaseName}, &wh); err != nil {
			return false, err
		}
		last = fmt.Sprintf("%d available replicas, CA bundle of %d bytes", dep.Status.AvailableReplicas, len(wh.Webhooks[0].ClientConfig.CABundle))
		return dep.Status.AvailableReplicas == 1 && len(wh.Webhooks[0].ClientConfig.CABundle) > 0, nil
	})
	if err != nil {
		t.Fatalf("albdrain's Deployment never became available: %v (last: %s)", err, last)
	}
	t.Logf("albdrain installed from its chart and available on the node in %s", time.Since(start).Round(100*time.Millisecond))
}

// onNode binds the Deployment's pods to the node and gives the manager
// credentials for the emulator.
func onNode(dep *unstructured.Unstructured, nodeName string) error {
	if err := unstructured.SetNestedField(dep.Object, nodeName, "spec", "template", "spec", "nodeName"); err != nil {
		return err
	}
	containers, _, err := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if err != nil || len(containers) != 1 {
		return fmt.Errorf("the chart's Deployment has %d containers (%v), want the manager only", len(containers), err)
	}
	c := containers[0].(map[string]any)
	env, _, _ := unstructured.NestedSlice(c, "env")
	c["env"] = append(env,
		map[string]any{"name": "AWS_ACCESS_KEY_ID", "value": "id"},
		map[string]any{"name": "AWS_SECRET_ACCESS_KEY", "value": "secret"})
	return unstructured.SetNestedSlice(dep.Object, containers, "spec", "template", "spec", "containers")
}

// holdOutcomes reads albdrain_holds_total by outcome from the manager's
// metrics endpoint, at its pod's address on the node.
func holdOutcomes(ctx context.Context, t *testing.T, c client.Client) map[string]float64 {
	t.Helper()
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(cluster.Namespace),
		client.MatchingLabels{"app.kubernetes.io/instance": helmchart.ReleaseName}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || pods.Items[0].Status.PodIP == "" {
		t.Fatalf("%d manager pods, want one with an address", len(pods.Items))
	}
	url := "http://" + net.JoinHostPort(pods.Items[0].Status.PodIP, "8080") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// albdrain_holds_total{outcome="quiet"} 2
		rest, ok := strings.CutPrefix(sc.Text(), `albdrain_holds_total{outcome="`)
		if !ok {
			continue
		}
		outcome, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			t.Fatalf("unexpected metric line %q", sc.Text())
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", sc.Text(), err)
		}
		out[outcome] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
