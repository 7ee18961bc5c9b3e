package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/node"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// heldContainers is how many app containers the pod of
// TestSixHeldContainersOnRealNode has, every one held.
const heldContainers = 6

// TestSixHeldContainersOnRealNode deletes, through the real kubelet, a pod
// of six app containers that all carry albdrain's preStop: the Service's
// target port is a number no container declares, so the webhook holds
// every one. The kubelet runs the six hooks at once; the pod gets one hold
// (one HoldStarted event, one end event, one outcome counted), and every
// container gets SIGTERM only after deregistration had begun.
func TestSixHeldContainersOnRealNode(t *testing.T) {
	r := startRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const ns = "six-held"
	pod := r.sixHeldPod(ctx, t, ns)
	if n := len(heldByHelper(pod)); n != heldContainers {
		t.Fatalf("%d containers carry albdrain's preStop, want %d: %+v", n, heldContainers, pod.Spec.Containers)
	}
	waitPod(ctx, t, r.env.Client, pod, func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
	logs := map[string]*os.File{}
	for _, c := range pod.Spec.Containers {
		logs[c.Name] = openContainerLog(t, r.n, pod, c.Name)
	}
	before := holdOutcomes(ctx, t, r.env.Client)
	helpers := node.WatchProcesses(ctx, r.n, contract.HelperPath+"\x00")
	if err := r.env.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, r.env.Client, pod)
	procs := helpers.Stop()
	if len(procs) != heldContainers {
		t.Errorf("the node ran %d helper processes, want one per held container (%d): %v", len(procs), heldContainers, procs)
	}

	events := podEvents(ctx, t, r.env.Client, pod)
	var started, ends int
	var deregistering time.Time
	for _, e := range events {
		switch {
		case e.Reason == contract.ReasonHoldStarted:
			started++
		case e.Reason == contract.ReasonHoldDeregistering && deregistering.IsZero():
			deregistering = eventTime(e)
		case e.Labels[contract.OutcomeLabel] != "":
			ends++
			t.Logf("hold ended %s: %s", e.Labels[contract.OutcomeLabel], e.Note)
		}
	}
	if started != 1 || ends != 1 {
		t.Errorf("%d HoldStarted and %d end events, want one hold: one of each", started, ends)
	}
	after := holdOutcomes(ctx, t, r.env.Client)
	var counted float64
	for _, o := range contract.Outcomes {
		d := after[string(o)] - before[string(o)]
		if d != 0 && (o == contract.OutcomeTimeout || o == contract.OutcomeFallback) {
			t.Errorf("the hold ended %s", o)
		}
		counted += d
	}
	if counted != 1 {
		t.Errorf("albdrain_holds_total grew by %v, want 1 (before %v, after %v)", counted, before, after)
	}
	if deregistering.IsZero() {
		t.Fatal("no HoldDeregistering event: the hold never saw the target leave")
	}
	for name, f := range logs {
		if at := sigtermTime(t, f); at.Before(deregistering) {
			t.Errorf("container %s got SIGTERM at %s, before deregistration began (%s)", name, at.Format(time.RFC3339Nano), deregistering.Format(time.RFC3339Nano))
		}
	}
}

// sixHeldPod creates, in a new namespace opted in to albdrain, a Service
// whose numeric target port no container declares, its
// TargetGroupBinding, and the pod of heldContainers podapp containers, the
// first serving the target port; it returns the pod as the webhook
// mutated it.
func (r *realNodeRig) sixHeldPod(ctx context.Context, t *testing.T, ns string) *corev1.Pod {
	t.Helper()
	arn, err := r.emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: ns, Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "six"}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{contract.InjectKey: "enabled"}}},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "six", Namespace: ns},
			Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		&lbc.TargetGroupBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "six", Namespace: ns},
			Spec: lbc.TargetGroupBindingSpec{TargetGroupARN: arn, TargetType: ptr.To(lbc.TargetTypeIP),
				ServiceRef: lbc.ServiceReference{Name: "six", Port: intstr.FromInt32(80)}},
		},
	}
	for _, o := range objs {
		if err := r.env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
	spec := corev1.PodSpec{
		NodeName:                      r.n.Name,
		ServiceAccountName:            "default",
		AutomountServiceAccountToken:  ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](60),
	}
	for i := range heldContainers {
		c := corev1.Container{
			Name: fmt.Sprintf("app-%d", i), Image: podappRef, ImagePullPolicy: corev1.PullNever,
			Args: []string{fmt.Sprintf("-addr=:%d", 8080+i)},
			Env:  []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		}
		if i == 0 {
			c.ReadinessProbe = &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
				PeriodSeconds: 1,
			}
		}
		spec.Containers = append(spec.Containers, c)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "six", Namespace: ns, Labels: labels}, Spec: spec}
	// The manager knows of the binding once its cache has it: until then
	// the webhook rightly leaves the pod alone.
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		dry := pod.DeepCopy()
		if err := r.env.Client.Create(ctx, dry, client.DryRunAll); err != nil {
			return false, err
		}
		return len(heldByHelper(dry)) > 0, nil
	})
	if err != nil {
		t.Fatalf("albdrain's webhook never injected the hold: %v", err)
	}
	if err := r.env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// heldByHelper names the containers whose preStop runs albdrain's helper.
func heldByHelper(pod *corev1.Pod) []string {
	var out []string
	for _, c := range pod.Spec.Containers {
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil &&
			len(c.Lifecycle.PreStop.Exec.Command) > 0 && c.Lifecycle.PreStop.Exec.Command[0] == contract.HelperPath {
			out = append(out, c.Name)
		}
	}
	return out
}

// openContainerLog opens a container's log on the node. The kubelet
// removes the file with the pod; the open file still reads to its end.
func openContainerLog(t *testing.T, n *node.Node, pod *corev1.Pod, container string) *os.File {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(n.PodLogsDir(), pod.Namespace+"_"+pod.Name+"_"+string(pod.UID), container, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no log of container %s on the node (%v)", container, err)
	}
	f, err := os.Open(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// podEvents waits for the watcher's end event on pod, then returns every
// event about it.
func podEvents(ctx context.Context, t *testing.T, c client.Client, pod *corev1.Pod) []eventsv1.Event {
	t.Helper()
	var about []eventsv1.Event
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var list eventsv1.EventList
		if err := c.List(ctx, &list, client.InNamespace(pod.Namespace)); err != nil {
			return false, err
		}
		about = about[:0]
		ended := false
		for _, e := range list.Items {
			if e.Regarding.UID == pod.UID {
				about = append(about, e)
				ended = ended || e.Labels[contract.OutcomeLabel] != ""
			}
		}
		return ended, nil
	})
	if err != nil {
		var reasons []string
		for _, e := range about {
			reasons = append(reasons, e.Reason)
		}
		t.Fatalf("no end event on pod %s: %v (events: %s)", pod.Name, err, strings.Join(reasons, ", "))
	}
	return about
}

// eventTime is when an event happened.
func eventTime(e eventsv1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
