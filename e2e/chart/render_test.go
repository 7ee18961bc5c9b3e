package chart

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/albdrain/albdrain/e2e/helmchart"
	"helm.sh/helm/v4/pkg/action"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	releaseName = helmchart.ReleaseName
	// A namespace other than the chart name, so a template that hard-codes
	// either shows up in the golden files and the install test.
	releaseNamespace = "albdrain-system"
)

// valueSets are the configurations rendered to golden files and linted.
var valueSets = []struct{ name, values string }{
	{"default", ``},
	{"cert-manager", `
certificates:
  provider: cert-manager
`},
	{"cert-manager-issuer", `
certificates:
  provider: cert-manager
  secretName: albdrain-tls
  certManager:
    issuerRef: {name: corp-ca, kind: ClusterIssuer, group: cert-manager.io}
`},
	{"draining-policy", `
watcher:
  releasePolicy: draining
  settleTime: 20s
`},
	{"sleep-mode", `
hold:
  mode: sleep
  sleepDuration: 45s
`},
	{"namespace-selector", `
webhook:
  failurePolicy: Fail
  timeoutSeconds: 5
  namespaceSelector:
    matchLabels:
      team: shop
    matchExpressions:
      - {key: environment, operator: In, values: [staging, production]}
`},
	{"monitoring", `
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
  prometheusRule: {enabled: true, labels: {release: prometheus}}
  dashboard: {enabled: true, annotations: {grafana_folder: AWS}}
`},
	{"helper-image", `
hold:
  helperImage: 111122223333.dkr.ecr.eu-west-1.amazonaws.com/mirror/albdrain:0.1.0
`},
	{"aws", `
image:
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
serviceAccount:
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/albdrain
aws:
  region: eu-west-1
  endpointURL: https://elasticloadbalancing.eu-west-1.amazonaws.com
  apiQPS: 2.5
  apiBurst: 5
watcher:
  earlyDeregister: true
  clusterName: prod-eu
  releasePolicy: draining
  settleTime: 20s
extraArgs: [--zap-stacktrace-level=panic]
`},
	// The conventions of the AWS Load Balancer Controller's, cert-manager's
	// and kube-prometheus-stack's charts.
	{"conventions", `
serviceAccount: {create: false, name: albdrain-irsa}
deploymentAnnotations: {reloader.stakater.com/auto: "true"}
revisionHistoryLimit: 3
updateStrategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}
hostNetwork: true
webhook: {port: 9445, readinessGateReportAfter: 0}
watcher: {port: 8445, pollInterval: 10}
metrics:
  port: 8085
  serviceMonitor:
    enabled: true
    namespace: monitoring
    interval: 15s
    scrapeTimeout: 10s
    honorLabels: true
    labels: {release: kube-prometheus-stack}
    relabelings: [{sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node}]
  prometheusRule:
    enabled: true
    disabled: {AlbdrainELBv2Throttled: true}
healthProbe: {port: 8086}
podDisruptionBudget: {maxUnavailable: null, minAvailable: 1}
extraEnv: [{name: HTTPS_PROXY, value: "http://proxy.internal:3128"}]
extraVolumes: [{name: corp-ca, configMap: {name: corp-ca}}]
extraVolumeMounts: [{name: corp-ca, mountPath: /etc/ssl/corp, readOnly: true}]
`},
}

func parseValues(t *testing.T, s string) map[string]any {
	t.Helper()
	vals, err := helmchart.ParseValues(s)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// render is `helm template`: the chart rendered client-side, values checked
// against the schema.
func render(t *testing.T, vals map[string]any) (string, error) {
	t.Helper()
	m, err := helmchart.Render(releaseNamespace, vals)
	if err != nil {
		return "", err
	}
	return m.Text, nil
}

func mustRender(t *testing.T, values string) string {
	t.Helper()
	m, err := render(t, parseValues(t, values))
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return m
}

func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := helmchart.Decode(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := (&helmchart.Manifest{Objects: objs}).Find(kind, name)
	if o == nil {
		t.Fatalf("the chart renders no %s %s", kind, name)
	}
	return o
}

// managerArgs returns the manager container's command line as rendered.
func managerArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	args, err := (&helmchart.Manifest{Objects: objs}).ManagerArgs()
	if err != nil {
		t.Fatal(err)
	}
	return args
}

func TestLintStrict(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			l := action.NewLint()
			l.Strict, l.Namespace, l.KubeVersion = true, releaseNamespace, helmchart.KubeVersion
			res := l.Run([]string{chartDir(t)}, parseValues(t, vs.values))
			for _, msg := range res.Messages {
				t.Log(msg)
			}
			if len(res.Errors) > 0 {
				t.Fatalf("lint: %v", errors.Join(res.Errors...))
			}
		})
	}
}

func TestGolden(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			got := mustRender(t, vs.values)
			path := filepath.Join("testdata", vs.name+".yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rendering differs from %s (run with -update if intended):\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff shows the first differing lines, enough to find the change.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}

func chartDir(t *testing.T) string {
	t.Helper()
	dir, err := helmchart.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
