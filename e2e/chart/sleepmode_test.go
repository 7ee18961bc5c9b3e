package chart

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// TestSleepModeInstallStartsWithoutAWS installs the chart in sleep mode on
// a machine without any AWS configuration, as the chart README promises
// works: the manager starts, becomes ready and mutates pods.
func TestSleepModeInstallStartsWithoutAWS(t *testing.T) {
	noAWS(t)
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD())
	installAndStart(t, env, "hold: {mode: sleep}", nil) // no AWS configuration of the test's own
	pod := newALBNamespace(t, env.Client, "shop", optIn).eventuallyMutated(t)
	if pod.Spec.Containers[0].Lifecycle == nil || pod.Spec.Containers[0].Lifecycle.PreStop == nil || pod.Spec.Containers[0].Lifecycle.PreStop.Sleep == nil {
		t.Errorf("pod not given a sleep hold: %+v", pod.Spec.Containers[0].Lifecycle)
	}
	if pod.Annotations[contract.InjectedKey] == "" {
		t.Errorf("pod has no %s annotation", contract.InjectedKey)
	}
}

// installAndStart applies the chart rendered with values and runs the
// manager under its flags and RBAC, as TestInstall does.
func installAndStart(t *testing.T, env *kubetest.Env, values string, awsCfg *aws.Config) {
	t.Helper()
	objs := objects(t, mustRender(t, values))
	webhookPort := reservePort(t)
	apply(t, env.Client, objs, webhookPort)
	args := managerArgs(t, objs)
	certDir := t.TempDir()
	mountSecret(t, env.Client, client.ObjectKey{Namespace: releaseNamespace, Name: flagValues(args)["cert-secret-name"]}, certDir)
	cfg := parseManagerFlags(t, withLocal(t, args, map[string]string{
		"webhook-port":              strconv.Itoa(webhookPort),
		"webhook-cert-dir":          certDir,
		"hold-cert-dir":             certDir,
		"hold-bind-address":         "127.0.0.1:0",
		"metrics-bind-address":      "0",
		"health-probe-bind-address": "127.0.0.1:" + strconv.Itoa(reservePort(t)),
		"cert-dns-name":             webhookHost,
		"shutdown-service":          "",
	}))
	startManager(t, env, cfg, awsCfg)
}

// noAWS empties every source of the AWS SDK's default chain this machine
// might have.
func noAWS(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	} {
		t.Setenv(k, "")
	}
}
