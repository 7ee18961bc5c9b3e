package lbcreact

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/albdrain/albdrain/internal/lbc"
)

// world is one measurement's objects: a Service whose EndpointSlice this
// package writes as the EndpointSlice controller would, its pods on one
// Ready node, and a binding of ip targets.
type world struct {
	c     client.Client
	ns    string
	run   int
	pods  int
	slice *discoveryv1.EndpointSlice
}

func (w *world) podName(i int) string { return fmt.Sprintf("web-%02d", i) }

func (w *world) pod(i int) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: w.podName(i)}}
}

func (w *world) create(ctx context.Context, tgARN string) error {
	if err := w.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}}); err != nil {
		return err
	}
	if err := w.node(ctx); err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: bindingName},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(targetPort)}},
		},
	}
	if err := w.c.Create(ctx, svc); err != nil {
		return err
	}
	w.slice = &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: bindingName + "-lbcreact", Labels: map[string]string{
			discoveryv1.LabelServiceName: bindingName,
			discoveryv1.LabelManagedBy:   "lbcreact.albdrain.dev",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](targetPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if err := w.c.Create(ctx, w.slice); err != nil {
		return err
	}
	for i := range w.pods {
		if err := w.createPod(ctx, i); err != nil {
			return err
		}
	}
	tt := lbc.TargetTypeIP
	return w.c.Create(ctx, &lbc.TargetGroupBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: bindingName},
		Spec: lbc.TargetGroupBindingSpec{
			TargetGroupARN: tgARN, TargetType: &tt,
			ServiceRef: lbc.ServiceReference{Name: bindingName, Port: intstr.FromInt32(80)},
		},
	})
}

// node creates the Ready node every pod runs on, once per cluster.
func (w *world) node(ctx context.Context) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
	if err := w.c.Create(ctx, n); apierrors.IsAlreadyExists(err) {
		return nil
	} else if err != nil {
		return err
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	return w.c.Status().Update(ctx, n)
}

// createPod creates pod i as a new rollout pod is while its readiness
// gate waits: running, containers ready, not Ready.
func (w *world) createPod(ctx context.Context, i int) error {
	p := w.pod(i)
	p.Labels = map[string]string{"app": "web"}
	p.Finalizers = []string{holdFinal}
	p.Spec = corev1.PodSpec{
		NodeName:       nodeName,
		Containers:     []corev1.Container{{Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: targetPort}}}},
		ReadinessGates: []corev1.PodReadinessGate{{ConditionType: corev1.PodConditionType(lbc.ReadinessGatePrefix + bindingName)}},
	}
	if err := w.c.Create(ctx, p); err != nil {
		return err
	}
	now := metav1.Now()
	ip := podAddr(w.run, i)
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, HostIP: "127.0.0.1",
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
		},
	}
	return w.c.Status().Update(ctx, p)
}

// setEndpoint adds pod i's endpoint to the slice, not ready (its gate is
// not True yet), or marks it terminating; it returns when the write was
// sent and how long it took.
func (w *world) setEndpoint(ctx context.Context, i int, terminating bool) (time.Time, time.Duration, error) {
	ep := discoveryv1.Endpoint{
		Addresses:  []string{podAddr(w.run, i)},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(terminating)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: w.ns, Name: w.podName(i)},
		NodeName:   ptr.To(nodeName),
	}
	w.setSliceEndpoint(ep)
	start := time.Now()
	if err := w.c.Update(ctx, w.slice); err != nil {
		return time.Time{}, 0, fmt.Errorf("write EndpointSlice: %w", err)
	}
	return start, time.Since(start), nil
}

func (w *world) setSliceEndpoint(ep discoveryv1.Endpoint) {
	for j := range w.slice.Endpoints {
		if w.slice.Endpoints[j].Addresses[0] == ep.Addresses[0] {
			w.slice.Endpoints[j] = ep
			return
		}
	}
	w.slice.Endpoints = append(w.slice.Endpoints, ep)
}

// remove ends pod i as the kubelet and the EndpointSlice controller would
// once it stopped: its endpoint leaves the slice, the pod goes.
func (w *world) remove(ctx context.Context, i int) error {
	addr := podAddr(w.run, i)
	eps := w.slice.Endpoints[:0]
	for _, ep := range w.slice.Endpoints {
		if ep.Addresses[0] != addr {
			eps = append(eps, ep)
		}
	}
	w.slice.Endpoints = eps
	if err := w.c.Update(ctx, w.slice); err != nil {
		return err
	}
	p := w.pod(i)
	if err := w.c.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		return client.IgnoreNotFound(err)
	}
	base := p.DeepCopy()
	controllerutil.RemoveFinalizer(p, holdFinal)
	return client.IgnoreNotFound(w.c.Patch(ctx, p, client.MergeFrom(base)))
}

// deleteBinding deletes the binding and waits for its controller to drop
// its finalizer.
func (w *world) deleteBinding(ctx context.Context) error {
	tgb := &lbc.TargetGroupBinding{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: bindingName}}
	if err := w.c.Delete(ctx, tgb); err != nil {
		return err
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := w.c.Get(ctx, client.ObjectKeyFromObject(tgb), tgb)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("the deleted binding kept its finalizer")
	}
	return err
}

// waitReconciled waits for the binding's first successful reconcile.
func (w *world) waitReconciled(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var tgb lbc.TargetGroupBinding
		if err := w.c.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: bindingName}, &tgb); err != nil {
			return false, err
		}
		g := tgb.Status.ObservedGeneration
		return g != nil && *g == tgb.Generation, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("status.observedGeneration never written")
	}
	return err
}
