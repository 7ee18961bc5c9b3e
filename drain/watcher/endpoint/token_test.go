package endpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/internal/contract"
)

// podWithToken is pod() as the webhook leaves it: with albdrain's token.
func podWithToken() *corev1.Pod {
	p := pod()
	p.Spec.ServiceAccountName = "web"
	p.Spec.Volumes = []corev1.Volume{{Name: contract.TrustVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: contract.TokenAudience, Path: contract.TokenFile}}},
	}}}}
	return p
}

// TestTokenFailures covers what the apiserver does not decide: a pod given a
// token must send one (no TokenReview is made without), and a TokenReview
// that fails is a 503 the helper retries, not a refusal. The apiserver's
// verdicts are tested against a real one in e2e/integration.
func TestTokenFailures(t *testing.T) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // the server's goroutines call the reviewer
	reviews := 0
	var answer func(r *authnv1.TokenReview) error
	setAnswer := func(f func(r *authnv1.TokenReview) error) { mu.Lock(); answer = f; mu.Unlock() }
	setAnswer(func(*authnv1.TokenReview) error { return errors.New("apiserver unavailable") })
	reviewer := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			mu.Lock()
			defer mu.Unlock()
			reviews++
			return answer(obj.(*authnv1.TokenReview))
		},
	}).Build()
	h := newHolder()
	srv := New(Options{
		Pods:          fake.NewClientBuilder().WithScheme(s).WithObjects(podWithToken()).Build(),
		Holder:        h,
		Tokens:        Tokens{Client: reviewer},
		MaxConcurrent: 10,
		Metrics:       metrics.New(),
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ask := func(token string) int {
		b, _ := json.Marshal(request())
		req, _ := http.NewRequest(http.MethodPost, ts.URL+contract.HoldPath, bytes.NewReader(b))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := clientFrom(podIP).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	got := map[string]int{"no token": ask(""), "review failed": ask("t")}
	// answerWith makes the apiserver answer every review with st.
	answerWith := func(st authnv1.TokenReviewStatus) {
		setAnswer(func(r *authnv1.TokenReview) error { r.Status = st; return nil })
	}
	// bound is a verdict accepting a token of ServiceAccount sa bound to web-1.
	bound := func(sa string) authnv1.TokenReviewStatus {
		return authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{contract.TokenAudience}, User: authnv1.UserInfo{
			Username: "system:serviceaccount:shop:" + sa,
			Extra:    map[string]authnv1.ExtraValue{extraPodName: {"web-1"}, extraPodUID: {"uid-1"}},
		}}
	}
	answerWith(bound("web"))
	got["the pod's token"] = ask("t")
	answerWith(bound("other"))
	got["another ServiceAccount's token naming the pod"] = ask("t")
	answerWith(authnv1.TokenReviewStatus{Authenticated: false, Error: "token expired"})
	got["a token the apiserver does not accept"] = ask("t")
	want := map[string]int{"no token": http.StatusUnauthorized, "review failed": http.StatusServiceUnavailable, "the pod's token": http.StatusOK,
		"another ServiceAccount's token naming the pod": http.StatusForbidden, "a token the apiserver does not accept": http.StatusUnauthorized}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if reviews != 4 {
		t.Errorf("%d TokenReviews, want 4 (none without a token)", reviews)
	}
	wantRefusals(t, srv, map[string]float64{contract.RefusedNoToken: 1, contract.RefusedReviewFailed: 1,
		contract.RefusedWrongPod: 1, contract.RefusedBadToken: 1})
}
