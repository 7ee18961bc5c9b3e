package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/cmd/albdrain/app"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/explain"
	"github.com/albdrain/albdrain/webhook"
)

// startAPIServer runs a real kube-apiserver and etcd (envtest). Under -short
// (make test-unit) it skips; otherwise missing binaries fail the test, so
// that it never passes without running.
func startAPIServer(t *testing.T) *envtest.Environment {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a kube-apiserver and etcd: make test-integration runs it")
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); assets == "" || err != nil {
		t.Fatalf("KUBEBUILDER_ASSETS=%q has no kube-apiserver: run `make assets` and set it to the directory make names, or run with -short", assets)
	}
	env := &envtest.Environment{WebhookInstallOptions: envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"}}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	if cfg == nil {
		t.Fatal("envtest gave no config")
	}
	return env
}

// freeAddr is a loopback address with a port no listener holds now. The
// root module cannot use the harness's reserved ports (e2e/ports); should
// another process take the port before the manager listens, the manager
// fails to start and the test says so rather than passing.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestManagerWiring starts the manager as main does, from its flags, against
// a real apiserver, and checks what app wires together: the readiness
// checks, the webhook and explain handlers on the webhook's TLS server, the
// hold endpoint on its own TLS listener with the same certificate, and
// albdrain's metrics on the manager's metrics endpoint.
func TestManagerWiring(t *testing.T) {
	env := startAPIServer(t)
	wio := env.WebhookInstallOptions
	// The watcher reads its AWS configuration as in a pod, from the
	// environment; no test here calls ELBv2.
	aws := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(aws, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(aws, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	probe, metrics, hold := freeAddr(t), freeAddr(t), freeAddr(t)
	var cfg app.Config
	fs := flag.NewFlagSet("albdrain", flag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse([]string{
		"--metrics-bind-address=" + metrics, "--health-probe-bind-address=" + probe,
		fmt.Sprintf("--webhook-port=%d", wio.LocalServingPort), "--webhook-cert-dir=" + wio.LocalServingCertDir,
		"--hold-bind-address=" + hold, "--hold-cert-dir=" + wio.LocalServingCertDir, "--aws-region=eu-west-1",
		"--helper-image=albdrain:test", "--watcher-url=https://albdrain.albdrain.svc:8443",
	}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), ctrl.Log))
	mgr, err := app.NewManager(ctx, env.Config, cfg, app.Options{Process: app.InProcess()}) // other tests of this package register the process's collectors
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}

	ready := waitReady(t, "http://"+probe+"/readyz?verbose", done)
	for _, check := range []string{"webhook", "shutdown", "certificates"} {
		if !strings.Contains(ready, "["+"+"+"]"+check+" ok") {
			t.Errorf("readyz has no passing %q check:\n%s", check, ready)
		}
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(wio.LocalServingCAData) {
		t.Fatal("envtest's serving CA does not parse")
	}
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}}
	webhookURL := fmt.Sprintf("https://127.0.0.1:%d", wio.LocalServingPort)

	t.Run("webhook", func(t *testing.T) {
		resp := admit(t, tlsClient, webhookURL+webhook.Path)
		if !resp.Allowed || resp.UID != "wiring-1" {
			t.Errorf("admission response = %+v, want allowed for uid wiring-1", resp)
		}
	})
	t.Run("explain", func(t *testing.T) {
		// Served beside the webhook; without credentials it refuses, but it is there.
		res, err := tlsClient.Get(webhookURL + explain.Path + "?namespace=default&pod=web")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			t.Errorf("GET %s: 404, the explain handler is not registered", explain.Path)
		}
	})
	t.Run("hold endpoint", func(t *testing.T) {
		// Its own listener, serving the certificate of --hold-cert-dir (trusted by the pods' CA bundle).
		res, err := tlsClient.Post("https://"+hold+contract.HoldPath, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound || res.StatusCode < 400 {
			t.Errorf("unauthenticated POST %s: %s, want a refusal from the hold handler", contract.HoldPath, res.Status)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		res, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		for _, name := range []string{"albdrain_webhook_mutations_total", "albdrain_holds_total", "albdrain_hold_requests_refused_total"} {
			if !bytes.Contains(body, []byte("\n"+name+"{")) {
				missing = append(missing, name)
			}
		}
		if d := cmp.Diff([]string(nil), missing); d != "" {
			t.Errorf("families missing from the manager's /metrics (-want +got):\n%s", d)
		}
	})
}

// waitReady polls the manager's /readyz until it answers 200 and returns its
// verbose body; it fails if the manager stops first.
func waitReady(t *testing.T, url string, done chan error) string {
	t.Helper()
	var last string
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("manager stopped before it was ready: %v (last /readyz: %s)", err, last)
		case <-tick.C:
		}
		res, err := http.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if last = string(body); res.StatusCode == http.StatusOK {
			return last
		}
	}
}

// admit sends the webhook a pod's creation, as the apiserver does.
func admit(t *testing.T, c *http.Client, url string) *admissionv1.AdmissionResponse {
	t.Helper()
	pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "wiring-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "default",
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("POST %s: %s: %s", url, res.Status, b)
	}
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil {
		t.Fatal("admission review without a response")
	}
	return out.Response
}
