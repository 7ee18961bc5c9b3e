package targetgroups

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/albdrain/albdrain/internal/lbc"
)

// account answers the Describe calls of an account holding groups, of
// which it lists pageSize per page, and counts them by operation.
type account struct {
	groups   []string
	pageSize int

	mu    sync.Mutex
	calls map[string]int
}

func (a *account) count(op string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.calls == nil {
		a.calls = map[string]int{}
	}
	a.calls[op]++
}

func (a *account) counted() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.calls)
}

func (a *account) DescribeTargetGroups(_ context.Context, in *awselbv2.DescribeTargetGroupsInput, _ ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetGroupsOutput, error) {
	a.count("DescribeTargetGroups")
	names := a.groups
	if len(in.TargetGroupArns) > 0 {
		names = in.TargetGroupArns
	}
	start := 0
	if in.Marker != nil {
		start = slices.Index(names, *in.Marker)
	}
	end := min(start+a.pageSize, len(names))
	out := &awselbv2.DescribeTargetGroupsOutput{}
	for _, arn := range names[start:end] {
		out.TargetGroups = append(out.TargetGroups, types.TargetGroup{
			TargetGroupArn: aws.String(arn), Protocol: types.ProtocolEnumHttp,
			HealthCheckEnabled: aws.Bool(true), HealthCheckPort: aws.String(trafficPort), HealthCheckIntervalSeconds: aws.Int32(5),
		})
	}
	if end < len(names) {
		out.NextMarker = aws.String(names[end])
	}
	return out, nil
}

func (a *account) DescribeTargetGroupAttributes(_ context.Context, in *awselbv2.DescribeTargetGroupAttributesInput, _ ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetGroupAttributesOutput, error) {
	a.count("DescribeTargetGroupAttributes")
	delay := "30"
	if strings.HasSuffix(aws.ToString(in.TargetGroupArn), "slow") {
		delay = "300"
	}
	return &awselbv2.DescribeTargetGroupAttributesOutput{Attributes: []types.TargetGroupAttribute{
		{Key: aws.String(AttrDeregistrationDelay), Value: aws.String(delay)},
	}}, nil
}

// byApp registers a pod in the target group named by its app label, and
// counts the pods it resolved.
type byApp struct {
	mu       sync.Mutex
	resolved int
}

func (b *byApp) Registrations(_ context.Context, pod *corev1.Pod) ([]lbc.Registration, error) {
	b.mu.Lock()
	b.resolved++
	b.mu.Unlock()
	return []lbc.Registration{{TargetGroupARN: pod.Labels["app"], Port: 8080}}, nil
}

// warmPod is a pod of the ReplicaSet named owner, or of none.
func warmPod(name, app, owner string, terminating bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "web", UID: k8stypes.UID(name), Labels: map[string]string{"app": app}}}
	if owner != "" {
		p.Labels["pod-template-hash"] = owner
	} else {
		p.Labels["name"] = name
	}
	if terminating {
		p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		p.Finalizers = []string{"test/keep"}
	}
	return p
}

// TestWarmerFillsWhatHoldsRead checks that one round caches the delay and
// settings of every running managed pod's group, through one listing and
// one attributes call per group, resolving each label set once; that a hold
// then spends no call on them; and that a round with nothing due spends
// none either.
func TestWarmerFillsWhatHoldsRead(t *testing.T) {
	api := &account{groups: []string{"tg-a", "tg-b", "tg-slow", "tg-other", "tg-gone"}, pageSize: 2}
	res := &byApp{}
	pods := fake.NewClientBuilder().WithObjects(
		warmPod("a-1", "tg-a", "rs-a", false),
		warmPod("a-2", "tg-a", "rs-a", false),
		warmPod("a-3", "tg-a", "rs-a", false),
		warmPod("b-1", "tg-b", "", false),
		warmPod("s-1", "tg-slow", "rs-s", false),
		warmPod("g-1", "tg-gone", "rs-g", true),
	).Build()
	w := &Warmer{
		Pods: pods, Resolver: res,
		Delays:   &Delays{API: api, MaxAge: time.Hour},
		Settings: &Settings{API: api, MaxAge: time.Hour},
		Every:    time.Minute, Pace: rate.NewLimiter(rate.Inf, 1),
	}
	ctx := context.Background()
	warm, err := w.round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if warm != 3 {
		t.Errorf("%d groups warm, want 3 (a, b, slow; not the terminating pod's)", warm)
	}
	if res.resolved != 3 {
		t.Errorf("%d pods resolved, want 3: one per label set, none terminating", res.resolved)
	}
	want := map[string]int{"DescribeTargetGroups": 3, "DescribeTargetGroupAttributes": 3}
	if diff := cmp.Diff(want, api.counted()); diff != "" {
		t.Errorf("calls of the first round (-want +got):\n%s", diff)
	}

	before := api.counted()
	if d, err := w.Delays.DeregistrationDelay(ctx, "tg-slow"); err != nil || d != 300*time.Second {
		t.Errorf("hold's delay of tg-slow: %v, %v; want 5m0s", d, err)
	}
	if s, err := w.Settings.Setting(ctx, "tg-b"); err != nil || s.HealthCheck == nil || s.HealthCheck.Interval != 5*time.Second {
		t.Errorf("hold's setting of tg-b: %+v, %v", s, err)
	}
	if _, err := w.round(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, api.counted()); diff != "" {
		t.Errorf("a hold and a round with nothing due made calls (-before +after):\n%s", diff)
	}
}
