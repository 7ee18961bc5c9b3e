package scenario

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// The workload every scenario runs: a Deployment "web" behind a Service
// "web" whose port 80 is bound to an ip target group by the
// TargetGroupBinding "web".
const (
	appName     = "web"
	bindingName = "web"
	portName    = "http"
	podPort     = 8080
)

var appLabels = map[string]string{"app": appName}

func namespace(name string, p Protection) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if p == Albdrain {
		ns.Labels = map[string]string{contract.InjectKey: "enabled"}
	}
	return ns
}

func service(ns string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: appLabels,
			Ports:    []corev1.ServicePort{{Name: portName, Port: 80, TargetPort: intstr.FromString(portName)}},
		},
	}
}

func binding(ns, arn string) *lbc.TargetGroupBinding {
	return &lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Name: bindingName, Namespace: ns},
		Spec: lbc.TargetGroupBindingSpec{
			TargetGroupARN: arn,
			TargetType:     ptr.To(lbc.TargetTypeIP),
			ServiceRef:     lbc.ServiceReference{Name: appName, Port: intstr.FromInt32(80)},
		},
	}
}

// deployment is the application as its owners wrote it for each
// protection. Without albdrain it carries the load balancer controller's
// readiness gate, as the controller's own pod-readiness-gate-inject webhook
// adds it, so the only failure left is the one at termination. With
// albdrain it is left bare: the webhook adds the gate and the hold. Its
// ServiceAccount is named, as the ServiceAccount admission plugin (which
// this apiserver runs without) names it before webhooks run, so that the
// webhook projects the pod's token.
func deployment(ns string, replicas int32, p Protection, fixedSleepSeconds int64) *appsv1.Deployment {
	pod := corev1.PodSpec{
		ServiceAccountName: "default",
		Containers: []corev1.Container{{
			Name: "app", Image: "registry.example/web:1",
			Ports: []corev1.ContainerPort{{Name: portName, ContainerPort: podPort}},
		}},
	}
	if p != Albdrain {
		pod.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: lbc.ReadinessGatePrefix + bindingName}}
	}
	if p == FixedSleep {
		pod.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Sleep: &corev1.SleepAction{Seconds: fixedSleepSeconds},
		}}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0)),
				},
			},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: appLabels}, Spec: pod},
		},
	}
}

// disruptionBudget lets one pod at a time be evicted.
func disruptionBudget(ns string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: appLabels},
		},
	}
}
