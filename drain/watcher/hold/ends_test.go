package hold

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	eventsv1 "k8s.io/api/events/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/albdrain/albdrain/internal/contract"
)

// Two replicas take the same pod's end report (the helper lost the first
// answer): the one that creates the pod's end event counts the outcome,
// the other counts nothing. A replica that cannot write the event counts
// the outcome itself and records it through its recorder.
func TestEndCountedOnceAcrossReplicas(t *testing.T) {
	refuse := interceptor.Funcs{Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
		return errors.New("apiserver unavailable")
	}}
	for _, tc := range []struct {
		name string
		// writes says whether each replica's event writes succeed.
		writes     []bool
		wantCounts []float64
		// wantEvents are the end events in the apiserver, by name.
		wantEvents []string
	}{
		{name: "both write", writes: []bool{true, true}, wantCounts: []float64{1, 0}, wantEvents: []string{EndEventName("u1")}},
		{name: "the first cannot write", writes: []bool{false, true}, wantCounts: []float64{1, 1}, wantEvents: []string{EndEventName("u1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apiserver := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
			pod := terminatingPod()
			pod.UID = "u1"
			var counts []float64
			for i, ok := range tc.writes {
				f := newFixture(types.TargetHealthStateEnumHealthy)
				c := client.WithWatch(apiserver)
				if !ok {
					c = interceptor.NewClient(apiserver, refuse)
				}
				f.h.Ends = &EndEvents{Client: c, Controller: "albdrain-watcher", Instance: "replica"}
				f.h.End(context.Background(), pod, contract.HoldEnd{Outcome: contract.OutcomeQuiet, HeldMillis: 2000, QuietMillis: 1000, Signal: contract.SignalSockDiag})
				counts = append(counts, testutil.ToFloat64(f.m.Holds.WithLabelValues(string(contract.OutcomeQuiet))))
				if !ok {
					f.wantEvents(t, contract.ReasonHoldReleased)
				} else if len(f.rec.Events) != 0 {
					t.Errorf("replica %d also recorded %q through its recorder", i, <-f.rec.Events)
				}
			}
			if d := cmp.Diff(tc.wantCounts, counts); d != "" {
				t.Errorf("quiet outcomes counted by each replica (-want +got):\n%s", d)
			}
			var list eventsv1.EventList
			if err := apiserver.List(context.Background(), &list); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range list.Items {
				names = append(names, e.Name)
				if e.Labels[contract.OutcomeLabel] != string(contract.OutcomeQuiet) || e.Regarding.UID != pod.UID || e.Reason != contract.ReasonHoldReleased {
					t.Errorf("end event %+v: want labelled quiet, about the pod, HoldReleased", e)
				}
			}
			if d := cmp.Diff(tc.wantEvents, names); d != "" {
				t.Errorf("end events (-want +got):\n%s", d)
			}
		})
	}
}
