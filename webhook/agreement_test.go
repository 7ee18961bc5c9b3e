package webhook

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/eligibility"
	"github.com/albdrain/albdrain/internal/eligibility/eligibilitytest"
	"github.com/albdrain/albdrain/internal/explain/serve"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
	"github.com/albdrain/albdrain/webhook/webhooktest"
)

// verdict is what the webhook did with a pod, or what explain says of it.
type verdict struct {
	Held   bool
	Reason eligibility.Reason
	// Note is the reason the webhook recorded in the pod.
	Note string
}

// TestWebhookAndExplainAgree runs every case of eligibility's table through
// the webhook's admission path, then asks explain about the pod the
// webhook let in: both come to the table's decision. A pod the webhook
// denies is never created, so explain is not asked about it.
func TestWebhookAndExplainAgree(t *testing.T) {
	s := lbctest.Scheme(t)
	objs := eligibilitytest.Objects()
	ctx := context.Background()
	for _, tc := range eligibilitytest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			finder := eligibilitytest.Finder(t, tc.BrokenLookup, objs...)
			reg := prometheus.NewRegistry()
			m := NewMetrics()
			if err := m.Register(reg); err != nil {
				t.Fatal(err)
			}
			d := &PodDefaulter{Finder: finder, Options: testOptions(), Metrics: m}
			raw, err := json.Marshal(tc.Pod)
			if err != nil {
				t.Fatal(err)
			}
			resp := admission.WithDefaulter[*corev1.Pod](s, d).Handle(ctx, webhooktest.Request(tc.Namespace, string(raw)))
			result, reason := counted(t, reg)
			if result != tc.Want.Result || reason != tc.Want.Reason {
				t.Fatalf("webhook counted %s/%s, want %s/%s", result, reason, tc.Want.Result, tc.Want.Reason)
			}
			if denied := tc.Want.Result == eligibility.ResultDenied; resp.Allowed == denied {
				t.Fatalf("allowed = %v, want %v: %v", resp.Allowed, !denied, resp.Result)
			}
			if !resp.Allowed {
				return
			}
			var pod corev1.Pod
			if err := json.Unmarshal([]byte(applyPatches(t, string(raw), resp)), &pod); err != nil {
				t.Fatal(err)
			}
			pod.Namespace = tc.Namespace
			webhookSaid := verdict{Held: pod.Labels[contract.ManagedLabel] == "true", Reason: reason, Note: pod.Annotations[contract.SkippedKey]}
			want := verdict{Held: tc.Want.Result == eligibility.ResultInjected, Reason: tc.Want.Reason, Note: tc.Want.Note}
			if d := cmp.Diff(want, webhookSaid); d != "" {
				t.Errorf("webhook (-want +got):\n%s", d)
			}

			h := &serve.Handler{Finder: finder, Resolver: noRegistrations{}}
			ex, err := h.Explain(ctx, &pod)
			// Explain shows the pod's backends whichever rule decides, so it
			// needs the lookup even where the webhook does not.
			if tc.BrokenLookup {
				if err == nil {
					t.Errorf("explain answered %+v with its lookup failing", ex)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			explainSaid := verdict{Held: ex.Protected, Reason: eligibility.Reason(ex.Reason), Note: pod.Annotations[contract.SkippedKey]}
			if d := cmp.Diff(webhookSaid, explainSaid); d != "" {
				t.Errorf("explain disagrees with the webhook (-webhook +explain):\n%s", d)
			}
			wantWhy := tc.Want.Why
			if tc.Want.Note != "" {
				wantWhy = "the webhook skipped it: " + tc.Want.Note
			}
			if !ex.Protected && ex.Why != wantWhy {
				t.Errorf("explain's why = %q, want %q", ex.Why, wantWhy)
			}
		})
	}
}

// counted is the one result and reason the webhook counted.
func counted(t *testing.T, reg *prometheus.Registry) (eligibility.Result, eligibility.Reason) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var result eligibility.Result
	var reason eligibility.Reason
	for _, mf := range mfs {
		if mf.GetName() != "albdrain_webhook_mutations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetCounter().GetValue() == 0 {
				continue
			}
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "result":
					result = eligibility.Result(l.GetValue())
				case "reason":
					reason = eligibility.Reason(l.GetValue())
				}
			}
			got = append(got, string(result)+"/"+string(reason))
		}
	}
	if len(got) != 1 {
		t.Fatalf("webhook counted %v, want one decision", got)
	}
	return result, reason
}

type noRegistrations struct{}

func (noRegistrations) Registrations(context.Context, *corev1.Pod) ([]lbc.Registration, error) {
	return nil, nil
}
