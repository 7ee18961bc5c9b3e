package targetgroups

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/albdrain/albdrain/internal/lbc"
)

type fixed []lbc.Registration

func (f fixed) Registrations(context.Context, *corev1.Pod) ([]lbc.Registration, error) { return f, nil }

// TestEitherFollowsTheCRD: discovery switches to bindings once the
// TargetGroupBinding CRD is served, without a restart.
func TestEitherFollowsTheCRD(t *testing.T) {
	served := false
	e := Either{Use: func() bool { return served }, Bindings: fixed{{TargetGroupARN: "by-binding"}}, Tags: fixed{{TargetGroupARN: "by-tag"}}}
	for _, tc := range []struct {
		served bool
		want   string
	}{{false, "by-tag"}, {true, "by-binding"}} {
		served = tc.served
		got, err := e.Registrations(context.Background(), &corev1.Pod{})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]lbc.Registration{{TargetGroupARN: tc.want}}, got); d != "" {
			t.Errorf("served=%v (-want +got):\n%s", tc.served, d)
		}
	}
}

// TestWithoutListingSkipsTags: the warmer's resolver follows the bindings
// once the CRD is served, and never falls back to listing tags.
func TestWithoutListingSkipsTags(t *testing.T) {
	served := false
	e := Either{Use: func() bool { return served }, Bindings: fixed{{TargetGroupARN: "by-binding"}}, Tags: fixed{{TargetGroupARN: "by-tag"}}}.WithoutListing()
	for _, tc := range []struct {
		served bool
		want   []lbc.Registration
	}{{false, nil}, {true, []lbc.Registration{{TargetGroupARN: "by-binding"}}}} {
		served = tc.served
		got, err := e.Registrations(context.Background(), &corev1.Pod{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("served=%v (-want +got):\n%s", tc.served, diff)
		}
	}
}
