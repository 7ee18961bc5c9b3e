package discovery

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// sdkClient is the real SDK pointed at the emulator.
func sdkClient(emu *albemu.Emulator) *elbv2.Client {
	return elbv2.New(elbv2.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(emu.URL()),
	})
}

func createGroup(t *testing.T, emu *albemu.Emulator, name string, tags map[string]string) string {
	t.Helper()
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: name, Port: 8080, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

func TestTagsTargets(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	lbc := createGroup(t, emu, "k8s-shop-web", map[string]string{
		TagCluster: "demo", TagResource: "shop/my-ingress-web:80", "ingress.k8s.aws/stack": "shop/my-ingress",
	})
	byName := createGroup(t, emu, "k8s-shop-web-named", map[string]string{
		TagCluster: "demo", TagResource: "shop/edge-web:http",
	})
	v1 := createGroup(t, emu, "v1-shop-metrics", map[string]string{
		TagV1Namespace: "shop", TagV1ServiceName: "web", TagV1ServicePort: "9090",
	})
	createGroup(t, emu, "other-cluster", map[string]string{TagCluster: "prod", TagResource: "shop/my-ingress-web:80"})
	createGroup(t, emu, "other-service", map[string]string{TagCluster: "demo", TagResource: "shop/my-ingress-webshop:80"})
	createGroup(t, emu, "other-namespace", map[string]string{TagCluster: "demo", TagResource: "store/my-ingress-web:80"})
	createGroup(t, emu, "untagged", nil)
	// Enough groups to need more than one DescribeTags batch.
	for i := range describeTagsBatch {
		createGroup(t, emu, fmt.Sprintf("filler-%d", i), map[string]string{"team": "x"})
	}

	web := map[string]string{"app": "web"}
	c := fakeClient(t,
		service("web", web,
			corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			corev1.ServicePort{Name: "metrics", Port: 9090},
		),
		service("other", map[string]string{"app": "other"}, corev1.ServicePort{Port: 80}),
	)
	tags := &Tags{API: sdkClient(emu), Client: c, Cluster: "demo", MaxAge: time.Hour, MinAge: time.Hour}
	got, err := tags.Targets(context.Background(), webPod())
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{TargetGroupARN: lbc, Port: 8080},
		{TargetGroupARN: byName, Port: 8080},
		{TargetGroupARN: v1, Port: 9090},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Targets (-want +got):\n%s", diff)
	}
	// Counted by answer, not attempt: under load the SDK may retry a
	// request whose connection failed.
	if n := answered(emu, "DescribeTags"); n != 2 {
		t.Errorf("DescribeTags answered %d times, want 2 batches of at most 20: %+v", n, emu.Calls())
	}

	// A second pod, even one matching nothing, is served from the cache.
	lonely := webPod()
	lonely.Labels = map[string]string{"app": "lonely"}
	for _, p := range []*corev1.Pod{webPod(), lonely} {
		if _, err := tags.Targets(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if n := answered(emu, "DescribeTargetGroups"); n != 1 {
		t.Errorf("DescribeTargetGroups calls = %d, want 1 (cached)", n)
	}
}

func answered(emu *albemu.Emulator, action string) int {
	n := 0
	for _, c := range emu.Calls() {
		if c.Action == action && c.Status == http.StatusOK {
			n++
		}
	}
	return n
}

func TestTagsRelistsForAnUnknownGroup(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	c := fakeClient(t, service("web", map[string]string{"app": "web"}, corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080)}))
	// MinAge zero: a miss may relist at once.
	tags := &Tags{API: sdkClient(emu), Client: c, Cluster: "demo", MaxAge: time.Hour}
	if got, err := tags.Targets(context.Background(), webPod()); err != nil || len(got) != 0 {
		t.Fatalf("Targets before the group exists = %v, %v", got, err)
	}
	arn := createGroup(t, emu, "k8s-shop-web", map[string]string{TagCluster: "demo", TagResource: "shop/ing-web:80"})
	got, err := tags.Targets(context.Background(), webPod())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Target{{TargetGroupARN: arn, Port: 8080}}, got); diff != "" {
		t.Errorf("Targets after the group appeared (-want +got):\n%s", diff)
	}
}

func TestTagsWithoutClusterNameIgnoresControllerTags(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	createGroup(t, emu, "k8s-shop-web", map[string]string{TagCluster: "demo", TagResource: "shop/ing-web:80"})
	c := fakeClient(t, service("web", map[string]string{"app": "web"}, corev1.ServicePort{Port: 80}))
	tags := &Tags{API: sdkClient(emu), Client: c, MaxAge: time.Hour}
	if got, err := tags.Targets(context.Background(), webPod()); err != nil || len(got) != 0 {
		t.Errorf("Targets = %v, %v; want none without a cluster name", got, err)
	}
}

func TestTagsNoSelectingServiceSkipsAWS(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	tags := &Tags{API: sdkClient(emu), Client: fakeClient(t), Cluster: "demo", MaxAge: time.Hour}
	if got, err := tags.Targets(context.Background(), webPod()); err != nil || len(got) != 0 {
		t.Errorf("Targets = %v, %v; want none", got, err)
	}
	if n := len(emu.Calls()); n != 0 {
		t.Errorf("%d ELBv2 calls for a pod no Service selects, want 0", n)
	}
}

func TestDelays(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web", DeregistrationDelay: 7 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := &Delays{API: sdkClient(emu), MaxAge: time.Hour}
	for range 2 {
		got, err := d.DeregistrationDelay(context.Background(), arn)
		if err != nil || got != 7*time.Second {
			t.Fatalf("DeregistrationDelay = %v, %v; want 7s", got, err)
		}
	}
	if n := emu.CallCount("DescribeTargetGroupAttributes"); n != 1 {
		t.Errorf("DescribeTargetGroupAttributes calls = %d, want 1 (cached)", n)
	}
	if _, err := d.DeregistrationDelay(context.Background(), arn+"-missing"); err == nil {
		t.Error("DeregistrationDelay of a missing group succeeded")
	}
}
