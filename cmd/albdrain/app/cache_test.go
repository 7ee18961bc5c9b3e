package app

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/albdrain/albdrain/drain/watcher"
	"github.com/albdrain/albdrain/drain/watcher/unheld"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// TestCacheTransformsKeepWhatIsRead: the cache keeps of each object what
// lbc.Finder and the watcher read, and drops the rest.
func TestCacheTransformsKeepWhatIsRead(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"},
			Annotations:   map[string]string{lastApplied: `{"kind":"..."}`, "alb.ingress.kubernetes.io/target-type": "ip"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}
	}
	kept := metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"},
		Annotations: map[string]string{"alb.ingress.kubernetes.io/target-type": "ip"}}
	ports := []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}
	tests := []struct {
		name      string
		transform func(any) (any, error)
		in, want  any
	}{
		{"Service", trimCached,
			&corev1.Service{ObjectMeta: meta(), Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: ports, Type: corev1.ServiceTypeLoadBalancer,
				LoadBalancerClass: ptr.To("service.k8s.aws/nlb"), ClusterIP: "10.0.0.1", ClusterIPs: []string{"10.0.0.1"}, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{Hostname: "k8s.elb"}}}}},
			&corev1.Service{ObjectMeta: kept, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: ports, Type: corev1.ServiceTypeLoadBalancer,
				LoadBalancerClass: ptr.To("service.k8s.aws/nlb")}}},
		{"Ingress", trimCached,
			&networkingv1.Ingress{ObjectMeta: meta(), Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("alb")},
				Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{{Hostname: "k8s.elb"}}}}},
			&networkingv1.Ingress{ObjectMeta: kept, Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("alb")}}},
		{"HTTPRoute", trimCached,
			&gwv1.HTTPRoute{ObjectMeta: meta(), Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}}},
				Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{{ControllerName: "gateway.k8s.aws/alb"}}}}},
			&gwv1.HTTPRoute{ObjectMeta: kept, Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}}}}},
		{"TargetGroupBinding keeps its status", trimCached,
			&lbc.TargetGroupBinding{ObjectMeta: meta(), Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: "arn:tg"}, Status: lbc.TargetGroupBindingStatus{ObservedGeneration: ptr.To[int64](2)}},
			&lbc.TargetGroupBinding{ObjectMeta: kept, Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: "arn:tg"}, Status: lbc.TargetGroupBindingStatus{ObservedGeneration: ptr.To[int64](2)}}},
		{"managed Pod", trimPod, managedPod(), trimmedPod()},
		{"the watcher's Event", unheld.EventsByObject(watcher.EventSource).Transform,
			&eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "albdrain-hold-end.u1", Namespace: "shop", UID: "e1", ResourceVersion: "9",
				Labels: map[string]string{contract.OutcomeLabel: "quiet"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "albdrain"}}},
				Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-1", UID: "u1"}, Reason: contract.ReasonHoldReleased,
				Note: "Released after 4s (quiet)", ReportingController: watcher.EventSource, ReportingInstance: "albdrain-watcher-0", Action: "Release", Type: corev1.EventTypeNormal},
			&eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "albdrain-hold-end.u1", Namespace: "shop", UID: "e1", ResourceVersion: "9"},
				Regarding: corev1.ObjectReference{UID: "u1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.transform(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// managedPod is a managed pod as the apiserver serves it, with fields the
// manager reads and many it does not.
func managedPod() *corev1.Pod {
	ports := []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	started := metav1.Unix(100, 0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u1", ResourceVersion: "7", Generation: 2, GenerateName: "web-",
			CreationTimestamp: metav1.Unix(50, 0), DeletionTimestamp: ptr.To(metav1.Unix(200, 0)), DeletionGracePeriodSeconds: ptr.To[int64](60),
			Labels: map[string]string{"app": "web", contract.ManagedLabel: "true"},
			Annotations: map[string]string{lastApplied: "{}", "prometheus.io/scrape": "true",
				contract.InjectedKey: `{"mode":"wait"}`, contract.DrainingSinceKey: "{}"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d8f"}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			InitContainers: []corev1.Container{
				{Name: contract.InitContainerName, Image: "albdrain:1", Command: []string{"/cp"}},
				{Name: "proxy", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Ports: ports, Args: []string{"--config", "big"}},
			},
			Containers: []corev1.Container{{Name: "app", Image: "app:1", Ports: ports, Env: []corev1.EnvVar{{Name: "SECRET_CONFIG", Value: "x"}},
				Command: []string{"/app"}, LivenessProbe: &corev1.Probe{}, Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}}}},
			Volumes: []corev1.Volume{
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}},
				{Name: contract.TrustVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: contract.TokenAudience}}}}}},
			},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: lbc.ReadinessGatePrefix + "web"}},
			NodeName:       "node-1",
			Tolerations:    []corev1.Toleration{{Key: "spot"}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.7", PodIPs: []corev1.PodIP{{IP: "10.0.0.7"}}, HostIP: "10.1.0.1", StartTime: &started,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: started, Message: "long"},
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting"},
				{Type: lbc.ReadinessGatePrefix + "web", Status: corev1.ConditionFalse, Reason: "Elb.InitialHealthChecking", LastTransitionTime: started, Message: "Initial health checks in progress"},
			},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: contract.InitContainerName, Image: "albdrain:1"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "app:1", ImageID: "app@sha256:0", ContainerID: "containerd://1", Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
		},
	}
}

// trimmedPod is what the cache keeps of managedPod.
func trimmedPod() *corev1.Pod {
	ports := []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	started := metav1.Unix(100, 0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u1", ResourceVersion: "7",
			CreationTimestamp: metav1.Unix(50, 0), DeletionTimestamp: ptr.To(metav1.Unix(200, 0)), DeletionGracePeriodSeconds: ptr.To[int64](60),
			Labels:      map[string]string{"app": "web", contract.ManagedLabel: "true"},
			Annotations: map[string]string{contract.InjectedKey: `{"mode":"wait"}`, contract.DrainingSinceKey: "{}"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			InitContainers:     []corev1.Container{{Name: "proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Ports: ports}},
			Containers:         []corev1.Container{{Name: "app", Ports: ports}},
			Volumes: []corev1.Volume{{Name: contract.TrustVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: contract.TokenAudience}}}}}}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: lbc.ReadinessGatePrefix + "web"}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.7", PodIPs: []corev1.PodIP{{IP: "10.0.0.7"}},
			Conditions: []corev1.PodCondition{
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: started},
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI"},
				{Type: lbc.ReadinessGatePrefix + "web", Status: corev1.ConditionFalse, Reason: "Elb.InitialHealthChecking", LastTransitionTime: started},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
		},
	}
}
