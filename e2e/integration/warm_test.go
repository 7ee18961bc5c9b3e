package integration

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/albdrain/albdrain/drain/watcher/targetgroups"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/internal/lbc"
)

// groupOfApp registers each pod in the target group its app label names.
type groupOfApp map[string]string

func (g groupOfApp) Registrations(_ context.Context, pod *corev1.Pod) ([]lbc.Registration, error) {
	if arn, ok := g[pod.Labels["app"]]; ok {
		return []lbc.Registration{{TargetGroupARN: arn, Port: 8080}}, nil
	}
	return nil, nil
}

// TestWarmerFillsTheHoldsCaches warms the caches of two groups with running
// managed pods from the emulator, and checks that the holds' lookups then
// read the emulator's values without a call of their own.
func TestWarmerFillsTheHoldsCaches(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	groups := groupOfApp{}
	for app, delay := range map[string]time.Duration{"web": 7 * time.Second, "api": 45 * time.Second} {
		arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: app, Port: 8080, DeregistrationDelay: delay,
			HealthCheck: albemu.HealthCheck{Interval: 3 * time.Second, Timeout: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		groups[app] = arn
	}
	createGroup(t, emu, "no-managed-pods", nil)
	pod := func(name, app string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{"app": app}}}
	}
	api := sdkClient(emu)
	delays := &targetgroups.Delays{API: api, MaxAge: time.Hour}
	settings := &targetgroups.Settings{API: api, MaxAge: time.Hour}
	warmed := make(chan int, 1)
	w := &targetgroups.Warmer{
		Pods:     fake.NewClientBuilder().WithObjects(pod("web-1", "web"), pod("web-2", "web"), pod("api-1", "api")).Build(),
		Resolver: groups, Delays: delays, Settings: settings,
		Every: time.Hour, Pace: rate.NewLimiter(rate.Inf, 1),
		Warm: func(n int) { warmed <- n },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	n := <-warmed
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d groups warm, want 2", n)
	}
	calls := len(emu.Calls())
	for app, want := range map[string]time.Duration{"web": 7 * time.Second, "api": 45 * time.Second} {
		if d, err := delays.DeregistrationDelay(context.Background(), groups[app]); err != nil || d != want {
			t.Errorf("%s: delay %v, %v; want %v", app, d, err, want)
		}
		s, err := settings.Setting(context.Background(), groups[app])
		if err != nil || s.HealthCheck == nil || s.HealthCheck.Interval != 3*time.Second || s.Protocol != "HTTP" {
			t.Errorf("%s: setting %+v, %v; want HTTP with a 3s health check", app, s, err)
		}
	}
	if got := len(emu.Calls()); got != calls {
		t.Errorf("the holds' lookups made %d ELBv2 calls after warming, want 0: %+v", got-calls, emu.Calls()[calls:])
	}
	if n := emu.CallCount("DescribeTargetGroupAttributes"); n != 2 {
		t.Errorf("DescribeTargetGroupAttributes called %d times, want 2: only the managed pods' groups", n)
	}
}
