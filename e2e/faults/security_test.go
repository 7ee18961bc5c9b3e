package faults_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/certs/tlspolicy"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/webhook"
)

// webhookAddr is where the apiserver calls albdrain's webhook.
func webhookAddr() string {
	wio := shared.Env.Environment.WebhookInstallOptions
	return net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort))
}

// servingCAs trusts the certificate albdrain's servers present here.
func servingCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(shared.Env.Environment.WebhookInstallOptions.LocalServingCAData)
	return pool
}

// Both of albdrain's servers, as the running manager serves them, refuse
// TLS before 1.2 and TLS 1.2 cipher suites outside the policy, and accept
// a modern client.
func TestTLSPolicy(t *testing.T) {
	weak := []uint16{
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	}
	for name, addr := range map[string]string{"webhook": webhookAddr(), "hold endpoint": shared.Albdrain.HoldAddr()} {
		t.Run(name, func(t *testing.T) {
			dial := func(cfg *tls.Config) (tls.ConnectionState, error) {
				cfg.RootCAs = servingCAs()
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
				if err != nil {
					return tls.ConnectionState{}, err
				}
				defer conn.Close()
				return conn.ConnectionState(), nil
			}
			if _, err := dial(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
				t.Error("TLS 1.1 handshake succeeded")
			}
			for _, suite := range weak {
				if _, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}); err == nil {
					t.Errorf("TLS 1.2 handshake with %s succeeded", tls.CipherSuiteName(suite))
				}
			}
			st, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12})
			if err != nil {
				t.Fatalf("TLS 1.2 handshake: %v", err)
			}
			if !slices.Contains(tlspolicy.CipherSuites, st.CipherSuite) {
				t.Errorf("TLS 1.2 negotiated %s, outside the policy", tls.CipherSuiteName(st.CipherSuite))
			}
			if st, err := dial(&tls.Config{}); err != nil || st.Version != tls.VersionTLS13 {
				t.Errorf("modern client: version %x, %v; want TLS 1.3", st.Version, err)
			}
		})
	}
}

// The hold endpoint answers a caller only about its own pod. Asking about
// another pod, from another pod's IP or an address no pod has, or about a
// pod that does not exist, gets one and the same 403: a caller cannot tell
// whether the pod exists or what its UID is.
func TestHoldEndpointAnswersOnlyAboutTheCallersPod(t *testing.T) {
	o := newOddNamespace(t)
	ctx := context.Background()
	var pods []*corev1.Pod
	for i := range 2 {
		p := o.pod("web", serving("app", 8080))
		if i == 0 {
			// Kept after its deletion, so that it can ask as a terminating pod.
			p.Finalizers = []string{keepFinalizer}
		}
		if err := shared.Env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			err := shared.Env.Client.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, p)
			return err == nil && p.Status.PodIP != "", err
		})
		if err != nil {
			t.Fatalf("pod %s never got an IP: %v", p.Name, err)
		}
		pods = append(pods, p)
	}
	a, b := pods[0], pods[1]
	ask := func(from string, req contract.HoldRequest) (int, string) {
		t.Helper()
		return askAt(t, shared.Albdrain.HoldAddr(), from, contract.HoldPath, req)
	}
	hold := func(p *corev1.Pod, uid bool) contract.HoldRequest {
		r := contract.HoldRequest{Namespace: p.Namespace, Name: p.Name, TimeoutMillis: 1}
		if uid {
			r.UID = string(p.UID)
		}
		return r
	}
	var refusals []string
	for what, tc := range map[string]struct {
		from string
		req  contract.HoldRequest
	}{
		"another pod, from a pod's IP":           {a.Status.PodIP, hold(b, false)},
		"another pod with its UID":               {a.Status.PodIP, hold(b, true)},
		"a pod, from an address no pod has":      {"127.254.0.1", hold(a, true)},
		"a pod that does not exist":              {a.Status.PodIP, contract.HoldRequest{Namespace: o.ns, Name: "nobody", TimeoutMillis: 1}},
		"the caller's name in another namespace": {a.Status.PodIP, contract.HoldRequest{Namespace: "default", Name: a.Name, TimeoutMillis: 1}},
	} {
		code, body := ask(tc.from, tc.req)
		if code != http.StatusForbidden {
			t.Errorf("%s: status %d (%q), want 403", what, code, body)
		}
		refusals = append(refusals, body)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(refusals)))) != 1 {
		t.Errorf("refusals differ, telling the caller something: %q", refusals)
	}
	// The caller's own pod is refused while it runs: a hold would take a
	// slot for nothing.
	if code, body := ask(a.Status.PodIP, hold(a, true)); code != http.StatusConflict {
		t.Errorf("own running pod: status %d (%q), want 409", code, body)
	}
	// Once it terminates it is answered, the positive control, even when
	// it asks before the watcher's cache has seen the deletion.
	t.Cleanup(func() {
		// Its own helper runs too, and reports its hold's end: that must be
		// counted during this test, not a later one.
		if _, err := terminated(a); err != nil {
			t.Error(err)
		}
		releaseFinalizer(t, a)
	})
	if err := shared.Env.Client.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if code, body := ask(a.Status.PodIP, hold(a, true)); code != http.StatusOK {
		t.Errorf("own terminating pod: status %d (%q), want 200", code, body)
	}
}

const keepFinalizer = "albdrain.test/keep"

// releaseFinalizer lets a pod kept by keepFinalizer go.
func releaseFinalizer(t *testing.T, p *corev1.Pod) {
	patch := client.RawPatch(types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/finalizers"}]`))
	if err := shared.Env.Client.Patch(context.Background(), p, patch); client.IgnoreNotFound(err) != nil {
		t.Error(err)
	}
}

// Malformed, mistyped and oversized AdmissionReviews sent straight to the
// running webhook server get a 4xx, in the HTTP status or in the review's
// response as the admission protocol carries it, and the server goes on
// mutating the pods the apiserver sends.
func TestMalformedAdmissionReviews(t *testing.T) {
	o := newOddNamespace(t)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: servingCAs()}}}
	url := "https://" + webhookAddr() + webhook.Path
	review := func(req *admissionv1.AdmissionRequest) []byte {
		b, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
		return b
	}
	podJSON, _ := json.Marshal(o.pod("web", serving("app", 8080)))
	svcJSON, _ := json.Marshal(corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: o.ns}})
	request := func(object []byte) *admissionv1.AdmissionRequest {
		r := &admissionv1.AdmissionRequest{
			UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: o.ns, Operation: admissionv1.Create,
		}
		r.Object.Raw = object
		return r
	}
	huge := bytes.Repeat([]byte("x"), 10<<20)
	cases := []struct {
		name, contentType string
		body              []byte
	}{
		{"empty body", "application/json", nil},
		{"garbage", "application/json", []byte("{{{ not json")},
		{"wrong content type", "text/plain", review(request(podJSON))},
		{"wrong kind of review", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"1"}}`)},
		{"no request", "application/json", review(nil)},
		{"no object", "application/json", review(request(nil))},
		{"object of another kind", "application/json", review(request(svcJSON))},
		{"object not JSON", "application/json", review(request([]byte(`"just a string"`)))},
		{"10 MiB body", "application/json", append(append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"`), huge...), []byte(`"}}`)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Post(url, tc.contentType, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatalf("the server did not answer: %v", err)
			}
			defer resp.Body.Close()
			text, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			code := resp.StatusCode
			if code == http.StatusOK {
				var ar admissionv1.AdmissionReview
				if err := json.Unmarshal(text, &ar); err != nil || ar.Response == nil || ar.Response.Result == nil {
					t.Fatalf("200 without a review answer: %q", text)
				}
				if ar.Response.Allowed {
					t.Fatalf("allowed: %q", text)
				}
				code = int(ar.Response.Result.Code)
			}
			if code < 400 || code >= 500 {
				t.Errorf("answered %d (%.300s), want a 4xx", code, text)
			}
			t.Logf("answered %d: %.200s", code, strings.TrimSpace(string(text)))
		})
	}

	// A well-formed review is still answered with a patch, and the apiserver
	// still gets pods mutated.
	resp, err := c.Post(url, "application/json", bytes.NewReader(review(request(podJSON))))
	if err != nil {
		t.Fatal(err)
	}
	var ar admissionv1.AdmissionReview
	err = json.NewDecoder(resp.Body).Decode(&ar)
	resp.Body.Close()
	if err != nil || ar.Response == nil || !ar.Response.Allowed || len(ar.Response.Patch) == 0 {
		t.Errorf("well-formed review: %+v, %v; want allowed with a patch", ar.Response, err)
	}
	p := o.pod("web", serving("app", 8080))
	if err := shared.Env.Client.Create(context.Background(), p, client.DryRunAll); err != nil || p.Labels[contract.ManagedLabel] != "true" {
		t.Errorf("pod through the apiserver afterwards: %v, labels %v; want it mutated", err, p.Labels)
	}
}
