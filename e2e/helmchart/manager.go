package helmchart

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ManagerArgs is the manager container's command line as rendered.
func (m *Manifest) ManagerArgs() ([]string, error) {
	d := m.Find("Deployment", ReleaseName)
	if d == nil {
		return nil, fmt.Errorf("the chart renders no Deployment %s", ReleaseName)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		return nil, fmt.Errorf("%d containers in the Deployment, want the manager only", len(containers))
	}
	args, _, err := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	if err != nil || len(args) == 0 {
		return nil, fmt.Errorf("manager args %v: %v", args, err)
	}
	return args, nil
}

// WithLocal replaces the values of the flags in local, each of which the
// chart must pass: addresses and directories that only a pod has, and which
// a manager run in the harness's process has elsewhere.
func WithLocal(args []string, local map[string]string) ([]string, error) {
	out := make([]string, 0, len(args))
	seen := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if v, ok := local[name]; ok {
			a = "--" + name + "=" + v
			seen[name] = true
		}
		out = append(out, a)
	}
	for name := range local {
		if !seen[name] {
			return nil, fmt.Errorf("the chart does not pass --%s", name)
		}
	}
	return out, nil
}

// WebhookConfiguration is albdrain's MutatingWebhookConfiguration as rendered.
func (m *Manifest) WebhookConfiguration() (*admissionv1.MutatingWebhookConfiguration, error) {
	o := m.Find("MutatingWebhookConfiguration", ReleaseName)
	if o == nil {
		return nil, fmt.Errorf("the chart renders no MutatingWebhookConfiguration %s", ReleaseName)
	}
	var wh admissionv1.MutatingWebhookConfiguration
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &wh); err != nil {
		return nil, fmt.Errorf("rendered webhook configuration: %w", err)
	}
	return &wh, nil
}

// RBAC returns the ServiceAccount and the roles and bindings the chart
// grants the manager, to be created before the manager runs as that
// ServiceAccount.
func (m *Manifest) RBAC() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range m.Objects {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			out = append(out, o)
		}
	}
	return out
}

// ServiceAccountUser is the identity of the manager's pods.
func ServiceAccountUser(namespace string) string {
	return "system:serviceaccount:" + namespace + ":" + ReleaseName
}

// InstallRBAC creates namespace, the chart's ServiceAccount and its RBAC,
// so that a manager acting as ServiceAccountUser(namespace) has exactly the
// permissions a user's install grants it.
func (m *Manifest) InstallRBAC(ctx context.Context, c client.Client, namespace string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, o := range m.RBAC() {
		if err := c.Create(ctx, o.DeepCopy()); err != nil {
			return fmt.Errorf("install %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}
