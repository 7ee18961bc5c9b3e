package hold

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/albdrain/albdrain/drain/watcher/release"
	"github.com/albdrain/albdrain/internal/contract"
)

// markSignaller passes marks on to the pod and tells the test.
type markSignaller struct {
	PodMarker
	marked chan struct{}
}

func (m markSignaller) MarkDraining(ctx context.Context, pod *corev1.Pod, since map[string]time.Time) error {
	err := m.PodMarker.MarkDraining(ctx, pod, since)
	m.marked <- struct{}{}
	return err
}

// TestDrainingStartSurvivesAReplicaChange checks that a hold resumed on
// another replica settles from when the first hold saw the target draining,
// not from its own first poll: the settle time does not start over.
func TestDrainingStartSurvivesAReplicaChange(t *testing.T) {
	const settle = 2 * time.Second
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	pod := terminatingPod()
	pod.UID, pod.Finalizers = "uid-1", []string{"test/keep"}
	pods := fake.NewClientBuilder().WithScheme(scheme).WithObjects(pod).Build()
	marker := markSignaller{PodMarker{Client: pods}, make(chan struct{}, 1)}

	// The first replica sees the target draining, records it, and goes away.
	first := newFixture(types.TargetHealthStateEnumDraining)
	first.h.Policy, first.h.Settle, first.h.Marker = release.PolicyDraining, settle, marker
	before := time.Now()
	ctx, stop := context.WithCancel(context.Background())
	done := first.hold(ctx, pod, time.Now().Add(time.Hour))
	<-marker.marked
	stop()
	if r := <-done; r.ok {
		t.Fatalf("first hold ended on its own: %+v", r)
	}
	var resumed corev1.Pod
	if err := pods.Get(context.Background(), client.ObjectKeyFromObject(pod), &resumed); err != nil {
		t.Fatal(err)
	}
	start := drainingSince(&resumed)[arn]
	if start.Before(before) || start.After(time.Now()) {
		t.Fatalf("recorded draining start %v (annotation %q), want one during the first hold", start, resumed.Annotations[contract.DrainingSinceKey])
	}

	// The settle time passes while the helper reconnects elsewhere. The
	// second replica's hold may last less than the settle time: it releases
	// only if it counts from the recorded start.
	time.Sleep(time.Until(start.Add(settle)))
	second := newFixture(types.TargetHealthStateEnumDraining)
	second.h.Policy, second.h.Settle = release.PolicyDraining, settle
	r := <-second.hold(context.Background(), &resumed, time.Now().Add(settle/2))
	if r.a.Outcome() != contract.OutcomeDrainingSettled {
		t.Errorf("resumed hold: %+v, want draining_settled from the recorded start", r.a)
	}
}
