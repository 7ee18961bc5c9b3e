package elbv2

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// gatedAPI records every call and holds the first one until release closes,
// as a rate limit or a slow response would.
type gatedAPI struct {
	mu      sync.Mutex
	calls   map[string][][]string
	first   chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gatedAPI) DeregisterTargets(_ context.Context, in *awselbv2.DeregisterTargetsInput, _ ...func(*awselbv2.Options)) (*awselbv2.DeregisterTargetsOutput, error) {
	var ids []string
	for _, t := range in.Targets {
		ids = append(ids, aws.ToString(t.Id))
	}
	g.mu.Lock()
	g.calls[aws.ToString(in.TargetGroupArn)] = append(g.calls[aws.ToString(in.TargetGroupArn)], ids)
	g.mu.Unlock()
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.first)
		<-g.release
	}
	if aws.ToString(in.TargetGroupArn) == "tg-broken" {
		return nil, errors.New("AccessDenied")
	}
	return &awselbv2.DeregisterTargetsOutput{}, nil
}

// TestRequestsWaitingForACallShareTheNext checks that holds of one rollout
// deregister in one call per target group, not one call per pod.
func TestRequestsWaitingForACallShareTheNext(t *testing.T) {
	api := &gatedAPI{calls: map[string][][]string{}, first: make(chan struct{}), release: make(chan struct{})}
	b := &Batcher{API: api}
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	deregister := func(arn, ip string) {
		wg.Go(func() {
			err := b.Deregister(context.Background(), arn, Target{ID: ip, Port: 8080})
			mu.Lock()
			errs[arn+" "+ip] = err
			mu.Unlock()
		})
	}
	deregister("tg-web", "10.0.0.1")
	<-api.first
	// While the first call is out, a rollout's other pods arrive; one
	// retried hold asks again for the same pod.
	for _, ip := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.2"} {
		deregister("tg-web", ip)
	}
	deregister("tg-broken", "10.0.0.2")
	// Every request is queued before the first call returns.
	for {
		b.mu.Lock()
		n := len(b.queues["tg-web"])
		b.mu.Unlock()
		if n == 4 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(api.release)
	wg.Wait()

	want := map[string][][]string{
		"tg-web":    {{"10.0.0.1"}, {"10.0.0.2", "10.0.0.3", "10.0.0.4"}},
		"tg-broken": {{"10.0.0.2"}},
	}
	api.mu.Lock()
	calls := api.calls
	api.mu.Unlock()
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("DeregisterTargets calls (-want +got):\n%s", diff)
	}
	for key, err := range errs {
		if wantErr := key == "tg-broken 10.0.0.2"; (err != nil) != wantErr {
			t.Errorf("%s: error %v, want error %v", key, err, wantErr)
		}
	}
	// A group's goroutine drops its empty queue after answering the last
	// request, so the answers may come first.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		diff := cmp.Diff(map[string][]request{}, b.queues, cmpopts.EquateEmpty())
		b.mu.Unlock()
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queues left (-want +got):\n%s", diff)
		}
		time.Sleep(time.Millisecond)
	}
}
