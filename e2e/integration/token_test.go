package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/drain/helper"
	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/contract"
)

// TestPodToken puts the hold endpoint's identity check against a real
// apiserver: a pod's hold needs the source IP of the pod and, for a pod the
// webhook gave a token, a ServiceAccount token the apiserver accepts for
// albdrain's audience and binds to that very pod. Tokens are issued as the
// kubelet issues them for a projected volume (TokenRequest bound to the pod).
func TestPodToken(t *testing.T) {
	t.Parallel()
	env := kubetest.Start(t, kubetest.WithTargetGroupBindingCRD())
	s := newScenario(t, env, true)
	s.create(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "web"}})
	withToken := func(p *corev1.Pod) {
		p.Spec.ServiceAccountName = "web"
		// Pods may opt out of their ServiceAccount's own token; albdrain's
		// projected one is there regardless.
		p.Spec.AutomountServiceAccountToken = ptr.To(false)
		p.Spec.Volumes = []corev1.Volume{{Name: contract.TrustVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: contract.TokenAudience, ExpirationSeconds: ptr.To[int64](contract.TokenExpirationSeconds), Path: contract.TokenFile,
			}}},
		}}}}
	}
	web1 := s.newPod("web-1", withToken)
	web2 := s.newPod("web-2", withToken)
	legacy := s.newPod("legacy") // injected before the trust volume
	s.startWatcher(s.metrics)
	s.eventually("the hold endpoint listens", func() bool {
		c, err := net.Dial("tcp", s.holdAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	for _, p := range []*corev1.Pod{web1, web2, legacy} {
		s.delete(p)
	}

	own := s.token(web1, contract.TokenAudience, true)
	tests := []struct {
		name   string
		pod    *corev1.Pod
		token  string
		status int
		// reason is the refusal counted, if any.
		reason string
	}{
		{"no token", web1, "", http.StatusUnauthorized, contract.RefusedNoToken},
		{"not a token", web1, "garbage", http.StatusUnauthorized, contract.RefusedBadToken},
		{"token of another audience", web1, s.token(web1, "https://kubernetes.default.svc", true), http.StatusUnauthorized, contract.RefusedBadToken},
		{"another pod's token", web1, s.token(web2, contract.TokenAudience, true), http.StatusForbidden, contract.RefusedWrongPod},
		{"the pod's ServiceAccount, bound to no pod", web1, s.token(web1, contract.TokenAudience, false), http.StatusForbidden, contract.RefusedWrongPod},
		{"the pod's own token", web1, own, http.StatusOK, ""},
		{"a pod injected before tokens, by its IP", legacy, "", http.StatusOK, ""},
	}
	var got, want []string
	for _, tc := range tests {
		got = append(got, tc.name+": "+http.StatusText(s.askDirect(tc.pod, tc.token)))
		want = append(want, tc.name+": "+http.StatusText(tc.status))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("answers (-want +got):\n%s", d)
	}
	// Each refusal is counted under the reason the apiserver's verdict gives.
	wantRefused, gotRefused := map[string]float64{}, map[string]float64{}
	for _, tc := range tests {
		if tc.reason != "" {
			wantRefused[tc.reason]++
		}
	}
	for _, r := range contract.RefusalReasons {
		if n := testutil.ToFloat64(s.metrics.HoldRefusals.WithLabelValues(r)); n != 0 {
			gotRefused[r] = n
		}
	}
	if d := cmp.Diff(wantRefused, gotRefused); d != "" {
		t.Errorf("albdrain_hold_requests_refused_total (-want +got):\n%s", d)
	}

	// The helper itself, with the token file as the kubelet writes it: its
	// own token holds, a refused one falls back at once.
	if r := s.holdWithToken(web1, own); r.Outcome != contract.OutcomeNotRegistered {
		t.Errorf("helper with its pod's token: hold ended %q, want not_registered", r.Outcome)
	}
	if r := s.holdWithToken(web2, own); r.Outcome != contract.OutcomeFallback {
		t.Errorf("helper with another pod's token: hold ended %q, want fallback", r.Outcome)
	}
	// Only the accepted requests held: the refused ones took no hold. A
	// pod's outcome is counted once, so web1's two holds count as one,
	// beside the legacy pod's.
	if got := testutil.ToFloat64(s.metrics.Holds.WithLabelValues("not_registered")); got != 2 {
		t.Errorf("albdrain_holds_total{outcome=not_registered} = %v, want 2 (web1 once, legacy once)", got)
	}
}

// token issues a token of pod's ServiceAccount for audience, bound to the
// pod if bound, as the kubelet does for a projected volume.
func (s *scenario) token(pod *corev1.Pod, audience string, bound bool) string {
	s.t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Spec.ServiceAccountName}}
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](contract.TokenExpirationSeconds)}}
	if bound {
		req.Spec.BoundObjectRef = &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	if err := s.env.Client.SubResource("token").Create(context.Background(), sa, req); err != nil {
		s.t.Fatalf("token request: %v", err)
	}
	return req.Status.Token
}

// askDirect sends pod's hold request from the pod's IP with token and
// returns the status.
func (s *scenario) askDirect(pod *corev1.Pod, token string) int {
	s.t.Helper()
	body, _ := json.Marshal(contract.HoldRequest{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), TimeoutMillis: waitLimit.Milliseconds()})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.holdAddr+contract.HoldPath, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(pod.Status.PodIP)}}
	c := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// holdWithToken runs the helper for pod with token in its trust volume.
func (s *scenario) holdWithToken(pod *corev1.Pod, token string) contract.HoldEnd {
	s.t.Helper()
	dir := s.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, contract.TokenFile), []byte(token), 0o600); err != nil {
		s.t.Fatal(err)
	}
	spec := contract.Spec{Mode: contract.ModeWait, MaxHold: waitLimit, Fallback: 10 * time.Millisecond, Ports: []int32{servedPort}}
	env := helper.Env{
		PodName: pod.Name, PodNamespace: pod.Namespace, PodUID: string(pod.UID),
		PodIP:      netip.MustParseAddr(pod.Status.PodIP),
		WatcherURL: "http://" + s.holdAddr,
		TrustDir:   dir,
	}
	r, _ := helper.Run(context.Background(), spec, env, helper.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return r
}
