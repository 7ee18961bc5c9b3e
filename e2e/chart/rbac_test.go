package chart

import (
	"context"
	"fmt"
	"testing"

	"github.com/albdrain/albdrain/internal/contract"

	authzv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

type access struct{ verb, group, resource, namespace, name string }

func (a access) String() string {
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	return fmt.Sprintf("%s %s.%s/%s %s", a.verb, a.resource, a.group, a.name, where)
}

// allowed asks the apiserver whether the chart's ServiceAccount may do a.
func allowed(t *testing.T, c client.Client, a access) bool {
	t.Helper()
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:   serviceAccountUser,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"},
		ResourceAttributes: &authzv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace, Name: a.name,
		},
	}}
	if err := c.Create(context.Background(), sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

// checkAccess pins the chart's RBAC to what the manager does. What it needs
// is also proven by running it impersonated; what it must not be able to do
// is only seen here.
func checkAccess(t *testing.T, c client.Client) {
	const own, other = releaseNamespace, "shop"
	secret, webhookConfig := releaseName+"-certs", releaseName
	var need []access
	for _, verb := range []string{"get", "list", "watch"} {
		for _, r := range []struct{ group, resource string }{
			{"", "pods"}, {"", "services"}, {"networking.k8s.io", "ingresses"},
			{"networking.k8s.io", "ingressclasses"}, {"elbv2.k8s.aws", "targetgroupbindings"},
			{"gateway.networking.k8s.io", "gatewayclasses"}, {"gateway.networking.k8s.io", "gateways"},
			{"gateway.networking.k8s.io", "httproutes"}, {"gateway.networking.k8s.io", "grpcroutes"},
			{"gateway.networking.k8s.io", "tcproutes"}, {"gateway.networking.k8s.io", "tlsroutes"},
			{"gateway.networking.k8s.io", "udproutes"}, {"gateway.networking.k8s.io", "referencegrants"},
			{"gateway.k8s.aws", "targetgroupconfigurations"}, {"gateway.k8s.aws", "loadbalancerconfigurations"},
		} {
			need = append(need, access{verb, r.group, r.resource, "", ""})
		}
	}
	need = append(need,
		// Events on the pods it holds, in their namespaces.
		access{"create", "events.k8s.io", "events", other, ""},
		access{"patch", "events.k8s.io", "events", other, ""},
		// Its own events, to find pods whose helper never reached it.
		access{"list", "events.k8s.io", "events", "", ""},
		access{"watch", "events.k8s.io", "events", "", ""},
		// The certificate Secret: the rotator's informer, and its writes.
		access{"list", "", "secrets", own, ""},
		access{"watch", "", "secrets", own, ""},
		access{"get", "", "secrets", own, secret},
		access{"update", "", "secrets", own, secret},
		// The CA bundle of its own webhook configuration.
		access{"list", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", ""},
		access{"watch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", ""},
		access{"get", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", webhookConfig},
		access{"update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", webhookConfig},
		// Pods' tokens, checked by the hold endpoint.
		access{"create", "authentication.k8s.io", "tokenreviews", "", ""},
		// Whether an explain caller may get the pod.
		access{"create", "authorization.k8s.io", "subjectaccessreviews", "", ""},
		// The CA bundle it publishes in the namespaces of managed pods.
		access{"create", "", "configmaps", other, ""},
		access{"get", "", "configmaps", other, contract.CABundleConfigMap},
		access{"update", "", "configmaps", other, contract.CABundleConfigMap},
		// Its own Service's EndpointSlices, read when it stops.
		access{"list", "discovery.k8s.io", "endpointslices", own, ""},
		access{"watch", "discovery.k8s.io", "endpointslices", own, ""},
	)
	for _, a := range need {
		if !allowed(t, c, a) {
			t.Errorf("denied: %s", a)
		}
	}

	forbidden := []access{
		// No Secrets beyond its own namespace, and only its own one by name.
		{"get", "", "secrets", "", ""},
		{"list", "", "secrets", "", ""},
		{"list", "", "secrets", other, ""},
		{"get", "", "secrets", "kube-system", secret},
		{"get", "", "secrets", own, "sh.helm.release.v1.albdrain.v1"},
		{"update", "", "secrets", own, "other"},
		{"create", "", "secrets", own, ""},
		{"delete", "", "secrets", own, secret},
		{"patch", "", "secrets", own, secret},
		// Only its own webhook configuration, and only its CA bundle's verbs.
		{"update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "other"},
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "other"},
		{"delete", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", webhookConfig},
		{"create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", ""},
		{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "other"},
		// It watches pods; it never changes, evicts or enters them.
		{"delete", "", "pods", other, "web-1"},
		{"patch", "", "pods", other, "web-1"},
		{"update", "", "pods", other, "web-1"},
		{"create", "", "pods", other, ""},
		{"create", "", "pods/eviction", other, "web-1"},
		{"create", "", "pods/exec", other, "web-1"},
		// Read-only on what it inspects.
		{"update", "", "services", other, "web"},
		{"patch", "elbv2.k8s.aws", "targetgroupbindings", other, "web"},
		{"delete", "networking.k8s.io", "ingresses", other, "web"},
		{"update", "gateway.networking.k8s.io", "httproutes", other, "web"},
		{"update", "gateway.networking.k8s.io", "gateways", other, "web"},
		{"patch", "gateway.k8s.aws", "targetgroupconfigurations", other, "web"},
		{"list", "gateway.networking.k8s.io", "backendtlspolicies", "", ""},
		{"list", "gateway.k8s.aws", "listenerruleconfigurations", "", ""},
		// EndpointSlices in its own namespace only, and only read.
		{"list", "discovery.k8s.io", "endpointslices", "", ""},
		{"list", "discovery.k8s.io", "endpointslices", other, ""},
		{"update", "discovery.k8s.io", "endpointslices", own, releaseName},
		{"create", "discovery.k8s.io", "endpointslices", own, ""},
		// Only its CA bundle among ConfigMaps, which it never deletes.
		{"get", "", "configmaps", own, ""},
		{"list", "", "configmaps", other, ""},
		{"get", "", "configmaps", other, "kube-root-ca.crt"},
		{"update", "", "configmaps", other, "app-config"},
		{"delete", "", "configmaps", other, contract.CABundleConfigMap},
		// Nothing else.
		{"list", "", "nodes", "", ""},
		{"create", "", "serviceaccounts/token", own, releaseName},
		{"create", "", "events", other, ""},
		{"update", "rbac.authorization.k8s.io", "clusterroles", "", releaseName},
		{"*", "*", "*", "", ""},
	}
	for _, a := range forbidden {
		if allowed(t, c, a) {
			t.Errorf("allowed: %s", a)
		}
	}
}
