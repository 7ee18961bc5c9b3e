package chart

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/albdrain/albdrain/e2e/helmchart"
)

// The schema is what stops a typo'd key from being silently ignored.
func TestSchemaRejects(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		want         []string // all in the error
	}{
		{"typo'd top-level key", "replicas: 3", []string{"replicas"}},
		{"typo'd nested key", "hold:\n  maxhold: 2m", []string{"/hold", "maxhold"}},
		{"typo'd key in the namespace selector", "webhook:\n  namespaceSelector:\n    matchLabel: {team: shop}", []string{"matchLabel"}},
		{"string for an integer", "replicaCount: two", []string{"/replicaCount"}},
		{"boolean as a string", "watcher:\n  earlyDeregister: \"yes\"", []string{"/watcher/earlyDeregister"}},
		{"negative duration in seconds", "hold:\n  maxHold: -5", []string{"/hold/maxHold"}},
		{"duration in words", "hold:\n  quietPeriod: 3 seconds", []string{"/hold/quietPeriod"}},
		{"report bound without a unit", "webhook:\n  readinessGateReportAfter: \"300\"", []string{"/webhook/readinessGateReportAfter"}},
		{"unknown hold mode", "hold:\n  mode: forever", []string{"/hold/mode"}},
		{"unknown default target type", "loadBalancerController:\n  defaultTargetType: alb", []string{"/loadBalancerController/defaultTargetType"}},
		{"webhook timeout above the apiserver's 30 s", "webhook:\n  timeoutSeconds: 60", []string{"/webhook/timeoutSeconds"}},
		{"unknown certificate provider", "certificates:\n  provider: vault", []string{"/certificates/provider"}},
		{"issuer without a name", "certificates:\n  certManager:\n    issuerRef: {kind: ClusterIssuer}", []string{"/certificates/certManager/issuerRef"}},
		{"extra argument that is not a flag", "extraArgs: [debug]", []string{"/extraArgs/0"}},
		{"shutdown step as a duration", "shutdown:\n  settleSeconds: 5s", []string{"/shutdown/settleSeconds"}},
		{"unknown alert disabled", "metrics:\n  prometheusRule:\n    disabled: {AlbdrainTypo: true}", []string{"AlbdrainTypo"}},
		{"volume without a name", "extraVolumes: [{emptyDir: {}}]", []string{"/extraVolumes/0"}},
		{"both PDB bounds", "podDisruptionBudget: {minAvailable: 1}", []string{"minAvailable or maxUnavailable, not both"}},
		{"grace period shorter than the shutdown's steps", "shutdown:\n  terminationGracePeriodSeconds: 30", []string{"terminationGracePeriodSeconds (30)", "(35)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, parseValues(t, tc.values))
			if err == nil {
				t.Fatal("rendered without error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// Every value set rendered in the other tests is one the schema accepts;
// this pins the edge that lenient patterns could break: a value set using
// each free-form field.
func TestSchemaAcceptsTheDocumentedForms(t *testing.T) {
	mustRender(t, `
logging: {level: 3, encoder: console}
podDisruptionBudget: {maxUnavailable: 50%}
resources: {requests: {cpu: 0.1, memory: 100Mi}, limits: {memory: 1Gi}}
hold: {maxHold: 1h5m, quietPeriod: 500ms}
webhook: {readinessGateReportAfter: "0"}
certificates: {certManager: {issuerRef: {}}}
`)
}

// TestDurationsAsSeconds checks that a duration given as a plain number, as
// `--set webhook.readinessGateReportAfter=0` gives it, is taken as seconds.
func TestDurationsAsSeconds(t *testing.T) {
	args := managerArgs(t, objects(t, mustRender(t, `
webhook: {readinessGateReportAfter: 0}
hold: {maxHold: 330, quietPeriod: 1.5}
`)))
	for _, want := range []string{"--readiness-gate-report-after=0s", "--max-hold=330s", "--quiet-period=1.5s"} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args lack %s: %v", want, args)
		}
	}
}

// TestExistingServiceAccount checks serviceAccount.create: false, as the AWS
// Load Balancer Controller's chart has it: no ServiceAccount is created, and
// the pod and the RBAC bindings use the named one.
func TestExistingServiceAccount(t *testing.T) {
	m, err := helmchart.Render(releaseNamespace, parseValues(t, "serviceAccount: {create: false, name: albdrain-irsa}"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range m.Objects {
		if o.GetKind() == "ServiceAccount" {
			t.Errorf("ServiceAccount %s created", o.GetName())
		}
	}
	dep := m.Find("Deployment", releaseName)
	if got, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName"); got != "albdrain-irsa" {
		t.Errorf("serviceAccountName %q, want albdrain-irsa", got)
	}
	if !strings.Contains(m.Text, "name: albdrain-irsa\n    namespace: "+releaseNamespace) {
		t.Error("no RBAC binding names the ServiceAccount albdrain-irsa")
	}
}
