package eligibility_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/albdrain/albdrain/internal/eligibility"
	"github.com/albdrain/albdrain/internal/eligibility/eligibilitytest"
)

// reasons are all the reasons.
var reasons = []eligibility.Reason{eligibility.ReasonOptedOut, eligibility.ReasonSystemNamespace, eligibility.ReasonLookupFailed,
	eligibility.ReasonNotIPTarget, eligibility.ReasonNoBackend, eligibility.ReasonWindows, eligibility.ReasonHostNetwork,
	eligibility.ReasonServiceMesh, eligibility.ReasonInvalidOverride, eligibility.ReasonNoServingPort, eligibility.ReasonBehindALB}

func TestDecide(t *testing.T) {
	objs := eligibilitytest.Objects()
	seen := map[eligibility.Reason]bool{}
	for _, tc := range eligibilitytest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			rules := eligibility.Rules{Finder: eligibilitytest.Finder(t, tc.BrokenLookup, objs...), Overrides: eligibilitytest.Overrides}
			got := rules.Decide(context.Background(), tc.Namespace, tc.Pod.DeepCopy())
			if wantErr := tc.Want.Result == eligibility.ResultError || tc.Want.Result == eligibility.ResultDenied; (got.Err != nil) != wantErr {
				t.Errorf("err = %v, want one: %v", got.Err, wantErr)
			}
			if got.Result == eligibility.ResultError {
				// The lookup's own error, whatever the client says.
				if !strings.HasPrefix(got.Why, "looking up its load balancer backends failed: ") {
					t.Errorf("why = %q", got.Why)
				}
				got.Why = ""
			}
			if d := cmp.Diff(tc.Want, got, cmpopts.IgnoreFields(eligibility.Decision{}, "Match", "Err")); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			seen[got.Reason] = true
		})
	}
	for _, r := range reasons {
		if !seen[r] {
			t.Errorf("no case decided by %s", r)
		}
	}
}

// TestDecideWithoutOverrides: a caller that does not know the webhook's
// defaults (explain) takes the pod's own annotations as valid.
func TestDecideWithoutOverrides(t *testing.T) {
	for _, tc := range eligibilitytest.Cases() {
		if tc.Want.Reason != eligibility.ReasonInvalidOverride {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			rules := eligibility.Rules{Finder: eligibilitytest.Finder(t, false, eligibilitytest.Objects()...)}
			got := rules.Decide(context.Background(), tc.Namespace, tc.Pod.DeepCopy())
			if got.Reason == eligibility.ReasonInvalidOverride || got.Err != nil {
				t.Errorf("decision = %+v, want the next rule's", got)
			}
		})
	}
}

func TestUnsupportedReasons(t *testing.T) {
	var got []eligibility.Reason
	for _, r := range reasons {
		if r.Unsupported() {
			got = append(got, r)
		}
	}
	want := []eligibility.Reason{eligibility.ReasonWindows, eligibility.ReasonHostNetwork, eligibility.ReasonServiceMesh}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
