package integration

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/albdrain/albdrain/drain/watcher/targetgroups"
	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/internal/lbc"
	"github.com/albdrain/albdrain/internal/lbc/lbctest"
)

// sdkClient is the real SDK pointed at the emulator.
func sdkClient(emu *albemu.Emulator) *awselbv2.Client {
	return awselbv2.New(awselbv2.Options{
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
	byResource := createGroup(t, emu, "k8s-shop-web", map[string]string{
		lbc.TagCluster: "demo", lbc.TagResource: "shop/my-ingress-web:80", "ingress.k8s.aws/stack": "shop/my-ingress",
	})
	byName := createGroup(t, emu, "k8s-shop-web-named", map[string]string{
		lbc.TagCluster: "demo", lbc.TagResource: "shop/edge-web:http",
	})
	v1 := createGroup(t, emu, "v1-shop-metrics", map[string]string{
		lbc.TagV1Namespace: "shop", lbc.TagV1ServiceName: "web", lbc.TagV1ServicePort: "9090",
	})
	createGroup(t, emu, "other-cluster", map[string]string{lbc.TagCluster: "prod", lbc.TagResource: "shop/my-ingress-web:80"})
	createGroup(t, emu, "other-service", map[string]string{lbc.TagCluster: "demo", lbc.TagResource: "shop/my-ingress-webshop:80"})
	createGroup(t, emu, "other-namespace", map[string]string{lbc.TagCluster: "demo", lbc.TagResource: "store/my-ingress-web:80"})
	createGroup(t, emu, "untagged", nil)
	// Enough groups to need more than one DescribeTags batch.
	for i := range 20 {
		createGroup(t, emu, fmt.Sprintf("filler-%d", i), map[string]string{"team": "x"})
	}

	web := map[string]string{"app": "web"}
	f := lbctest.NewFinder(t,
		service("web", web,
			corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			corev1.ServicePort{Name: "metrics", Port: 9090},
		),
		service("other", map[string]string{"app": "other"}, corev1.ServicePort{Port: 80}),
	)
	tags := &targetgroups.Tags{API: sdkClient(emu), Finder: f, Cluster: "demo", MaxAge: time.Hour, MinAge: time.Hour}
	got, err := tags.Registrations(context.Background(), webPod())
	if err != nil {
		t.Fatal(err)
	}
	want := []lbc.Registration{
		{TargetGroupARN: byResource, Port: 8080},
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
		if _, err := tags.Registrations(context.Background(), p); err != nil {
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
	f := lbctest.NewFinder(t, service("web", map[string]string{"app": "web"}, corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(8080)}))
	// MinAge zero: a miss may relist at once.
	tags := &targetgroups.Tags{API: sdkClient(emu), Finder: f, Cluster: "demo", MaxAge: time.Hour}
	if got, err := tags.Registrations(context.Background(), webPod()); err != nil || len(got) != 0 {
		t.Fatalf("Targets before the group exists = %v, %v", got, err)
	}
	arn := createGroup(t, emu, "k8s-shop-web", map[string]string{lbc.TagCluster: "demo", lbc.TagResource: "shop/ing-web:80"})
	got, err := tags.Registrations(context.Background(), webPod())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]lbc.Registration{{TargetGroupARN: arn, Port: 8080}}, got); diff != "" {
		t.Errorf("Targets after the group appeared (-want +got):\n%s", diff)
	}
}

func TestTagsWithoutClusterNameIgnoresControllerTags(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	createGroup(t, emu, "k8s-shop-web", map[string]string{lbc.TagCluster: "demo", lbc.TagResource: "shop/ing-web:80"})
	f := lbctest.NewFinder(t, service("web", map[string]string{"app": "web"}, corev1.ServicePort{Port: 80}))
	tags := &targetgroups.Tags{API: sdkClient(emu), Finder: f, MaxAge: time.Hour}
	if got, err := tags.Registrations(context.Background(), webPod()); err != nil || len(got) != 0 {
		t.Errorf("Targets = %v, %v; want none without a cluster name", got, err)
	}
}

func TestTagsNoSelectingServiceSkipsAWS(t *testing.T) {
	emu := albemu.NewForTest(t, albemu.Options{})
	tags := &targetgroups.Tags{API: sdkClient(emu), Finder: lbctest.NewFinder(t), Cluster: "demo", MaxAge: time.Hour}
	if got, err := tags.Registrations(context.Background(), webPod()); err != nil || len(got) != 0 {
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
	d := &targetgroups.Delays{API: sdkClient(emu), MaxAge: time.Hour}
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

func webPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "app",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
		}}},
	}
}

func service(name string, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: ports},
	}
}
