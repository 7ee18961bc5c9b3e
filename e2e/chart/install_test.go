package chart

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/e2e/helmchart"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/e2e/ports"
)

// podSecurityEnforce is the namespace label by which the apiserver enforces
// a Pod Security Standard.
const podSecurityEnforce = "pod-security.kubernetes.io/enforce"

// serviceAccountUser is the identity the chart's Deployment runs as.
var serviceAccountUser = helmchart.ServiceAccountUser(releaseNamespace)

// webhookHost is where the test's apiserver reaches the in-process webhook.
// envtest cannot route to a Service, so the configuration gets a URL
// instead, and the certificate is issued for this name rather than the
// Service's: the apiserver verifies the name it dials.
const webhookHost = "localhost"

func withLocal(t *testing.T, args []string, local map[string]string) []string {
	t.Helper()
	out, err := helmchart.WithLocal(args, local)
	if err != nil {
		t.Error(err)
	}
	return out
}

// parseManagerFlags reads args as cmd/albdrain's main does.
func parseManagerFlags(t *testing.T, args []string) app.Config {
	t.Helper()
	var cfg app.Config
	fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
	cfg.BindFlags(fs)
	var zapOpts zap.Options
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("the manager rejects the chart's flags: %v", err)
	}
	if fs.NArg() > 0 {
		t.Fatalf("stray arguments %q", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the chart's flags are invalid: %v", err)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	return cfg
}

// apply creates every rendered object as `kubectl apply` of `helm template`
// would, with strict field validation so a misspelt field in a template
// fails. The webhook configuration is pointed at the local server.
func apply(t *testing.T, c client.Client, objs []*unstructured.Unstructured, webhookPort int) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace, Labels: map[string]string{podSecurityEnforce: "restricted"}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		o = o.DeepCopy()
		namespaced, err := c.IsObjectNamespaced(o)
		if err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		if namespaced && o.GetNamespace() != releaseNamespace {
			t.Errorf("%s %s is in namespace %q, want the release's: without it `helm template | kubectl apply` puts it elsewhere", o.GetKind(), o.GetName(), o.GetNamespace())
		}
		if o.GetKind() == "MutatingWebhookConfiguration" {
			pointAt(t, o, webhookPort)
		}
		if err := c.Create(ctx, o, &client.CreateOptions{FieldValidation: metav1.FieldValidationStrict}); err != nil {
			t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// pointAt swaps each webhook's Service reference for a URL with the same
// path on the local server, leaving everything else as rendered.
func pointAt(t *testing.T, wh *unstructured.Unstructured, port int) {
	t.Helper()
	hooks, _, _ := unstructured.NestedSlice(wh.Object, "webhooks")
	for i := range hooks {
		h := hooks[i].(map[string]any)
		path, found, _ := unstructured.NestedString(h, "clientConfig", "service", "path")
		if !found {
			t.Fatalf("webhook %v has no service path", h["name"])
		}
		unstructured.RemoveNestedField(h, "clientConfig", "service")
		if err := unstructured.SetNestedField(h, fmt.Sprintf("https://%s:%d%s", webhookHost, port, path), "clientConfig", "url"); err != nil {
			t.Fatal(err)
		}
	}
	if err := unstructured.SetNestedSlice(wh.Object, hooks, "webhooks"); err != nil {
		t.Fatal(err)
	}
}

// fakeAWS satisfies the watcher, which refuses to start in wait mode
// without AWS credentials; they are never used, since no pod here is held.
var fakeAWS = &aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}

// startManager runs the manager as the chart's ServiceAccount, so any
// permission the chart forgot stops it from syncing or issuing. awsCfg, when
// set, replaces the SDK's default chain.
func startManager(t *testing.T, env *kubetest.Env, cfg app.Config, awsCfg *aws.Config) {
	t.Helper()
	rc := rest.CopyConfig(env.Config)
	rc.Impersonate = rest.ImpersonationConfig{UserName: serviceAccountUser}
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := app.NewManager(ctx, rc, cfg, app.Options{AWS: awsCfg, Process: app.InProcess()})
	if err != nil {
		cancel()
		t.Fatalf("manager: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		// Bounded: a manager whose caches never synced (missing RBAC) does
		// not return from Start once cancelled (controller-runtime v0.25).
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("manager did not stop within a minute")
		}
	})
	probe := "http://" + cfg.ProbeAddr + "/readyz?verbose"
	var last string
	eventually(t, "the manager to be ready", func() (bool, error) {
		select {
		case err := <-done:
			done <- err
			return false, fmt.Errorf("manager exited: %w", err)
		default:
		}
		resp, err := http.Get(probe)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		last = resp.Status + "\n" + string(body)
		return resp.StatusCode == http.StatusOK, nil
	}, func() string { return last })
}

// eventually polls cond until it holds, failing the test with detail() at
// the deadline.
func eventually(t *testing.T, what string, cond func() (bool, error), detail func() string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 90*time.Second, true,
		func(context.Context) (bool, error) { return cond() })
	if err != nil {
		msg := ""
		if detail != nil {
			msg = ": " + detail()
		}
		t.Fatalf("waiting for %s: %v%s", what, err, msg)
	}
}

func reservePort(t *testing.T) int {
	t.Helper()
	p, err := ports.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInstall(t *testing.T) {
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD())
	objs := objects(t, mustRender(t, ""))
	webhookPort := reservePort(t)
	apply(t, env.Client, objs, webhookPort)

	t.Run("the manager's pod passes the restricted Pod Security Standard", func(t *testing.T) {
		checkRestricted(t, env.Client, find(t, objs, "Deployment", releaseName))
	})
	t.Run("the ServiceAccount may do what the manager does and no more", func(t *testing.T) {
		checkAccess(t, env.Client)
	})

	args := managerArgs(t, objs)
	certDir := t.TempDir()
	secret := client.ObjectKey{Namespace: releaseNamespace, Name: flagValues(args)["cert-secret-name"]}
	mountSecret(t, env.Client, secret, certDir)
	cfg := parseManagerFlags(t, withLocal(t, args, map[string]string{
		"webhook-port":              strconv.Itoa(webhookPort),
		"webhook-cert-dir":          certDir,
		"hold-cert-dir":             certDir,
		"hold-bind-address":         "127.0.0.1:0",
		"metrics-bind-address":      "0",
		"health-probe-bind-address": "127.0.0.1:" + strconv.Itoa(reservePort(t)),
		"cert-dns-name":             webhookHost,
		// No Service routes here (see webhookHost): the manager stops at once.
		"shutdown-service": "",
	}))
	startManager(t, env, cfg, fakeAWS)

	c := &certChecks{c: env.Client, secret: secret, webhookName: releaseName, webhookPort: webhookPort}
	apps := newALBNamespace(t, env.Client, "shop", optIn)
	t.Run("certificate issued and its CA injected", c.issued)
	var first []byte
	t.Run("the apiserver calls the webhook over TLS", func(t *testing.T) {
		first = c.ca(t)
		apps.mutatedWithCA(t, first, cfg.Webhook.HelperImage)
	})
	t.Run("the chart's selectors keep other pods away", apps.selectorsHold)
	t.Run("an expiring serving certificate is renewed under the same CA", c.renewsExpiring)
	t.Run("a broken CA is replaced and the apiserver trusts the new one", func(t *testing.T) {
		c.replacesBrokenCA(t)
		apps.eventuallyMutated(t)
	})
	// Pods created before the change trust the new CA through their
	// renewed bundle, and replicas still serving the old one stay trusted.
	t.Run("the published CA bundle holds the new CA and the one it replaced", func(t *testing.T) {
		apps.bundleHolds(t, c.ca(t), first)
	})
}
