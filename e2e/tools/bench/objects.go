package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/kubetest"
	"github.com/albdrain/albdrain/internal/lbc"
)

// The application every measurement's pods belong to: a container serving
// port 8080 under the name "http", selected by Services on "app".
const (
	appPortName = "http"
	appPort     = 8080
)

// unthrottledClient is a client without client-go's default 5 requests a
// second: latency and setup must be the apiserver's, not a client-side
// queue's.
func unthrottledClient(cfg *rest.Config) (client.Client, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	return client.New(cfg, client.Options{Scheme: kubetest.NewScheme()})
}

// createAll creates objs concurrently; an object that already exists is
// left as it is.
func createAll(ctx context.Context, cl client.Client, objs []client.Object) error {
	return parallel(ctx, len(objs), func(ctx context.Context, i int) error {
		o := objs[i]
		if err := cl.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
		}
		return nil
	})
}

// parallel runs f for 0..n-1 on a few workers and returns the first error,
// after which the remaining indexes are skipped. A handful of workers keeps
// the apiserver busy without the client becoming the bottleneck.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	const workers = 8
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// service selects app=name on port 80 to the pods' "http" port. Headless:
// the test apiserver's service IP range holds only a few hundred.
func service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app": name},
			Ports:     []corev1.ServicePort{{Name: appPortName, Port: 80, TargetPort: intstr.FromString(appPortName)}},
		},
	}
}

// binding registers a Service's pods as ip targets of the target group arn.
func binding(ns, svc, arn string) *lbc.TargetGroupBinding {
	return &lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns},
		Spec: lbc.TargetGroupBindingSpec{
			TargetGroupARN: arn,
			TargetType:     ptr.To(lbc.TargetTypeIP),
			ServiceRef:     lbc.ServiceReference{Name: svc, Port: intstr.FromInt32(80)},
		},
	}
}

// albIngressClass is the load balancer controller's IngressClass.
func albIngressClass() *networkingv1.IngressClass {
	return &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "alb"},
		Spec:       networkingv1.IngressClassSpec{Controller: lbc.ALBController},
	}
}

// ingress routes to a Service as ip targets of an ALB.
func ingress(ns, svc string) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns, Annotations: map[string]string{lbc.TargetTypeAnnotation: "ip"}},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("alb"), DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}},
	}
}

// appPod is an application pod as a Deployment would stamp it: a few
// environment variables, resources and a readiness probe, so its size is a
// real pod's rather than a minimal one's.
func appPod(ns, name, app, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels:      map[string]string{"app": app, "pod-template-hash": "5d8f7c9b6"},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
		},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/" + app + ":1.0.0",
				Ports: []corev1.ContainerPort{{Name: appPortName, ContainerPort: appPort}},
				Env: []corev1.EnvVar{
					{Name: "LOG_LEVEL", Value: "info"},
					{Name: "LISTEN_ADDR", Value: ":8080"},
					{Name: "DB_HOST", Value: "db.example.internal"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
				}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString(appPortName)}}},
			}},
		},
	}
}

// runningStatus is what a kubelet reports for pod once it runs at ip and
// the load balancer controller has marked its targets healthy.
func runningStatus(pod *corev1.Pod, ip netip.Addr) corev1.PodStatus {
	now := metav1.Now()
	st := corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip.String(), PodIPs: []corev1.PodIP{{IP: ip.String()}},
		HostIP: "127.0.0.1", StartTime: &now, QOSClass: corev1.PodQOSBurstable,
	}
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, g := range pod.Spec.ReadinessGates {
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: g.ConditionType, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, c := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image + "@sha256:0123456789abcdef", ContainerID: "containerd://" + pod.Name + "-" + c.Name,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image + "@sha256:0123456789abcdef", ContainerID: "containerd://" + pod.Name + "-" + c.Name,
			Ready: true, Started: ptr.To(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return st
}
