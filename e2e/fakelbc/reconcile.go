package fakelbc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/albdrain/albdrain/internal/lbc"
)

// Metadata the controller keeps on a binding.
const (
	// Finalizer is targetGroupBindingFinalizer: the binding is not gone
	// until its targets are deregistered.
	Finalizer = "elbv2.k8s.aws/resources"
	// CheckpointKey and CheckpointTimeKey are annotations.AnnotationCheckPoint
	// and its timestamp: a hash of the endpoints and spec last reconciled.
	CheckpointKey     = "elbv2.k8s.aws/checkpoint"
	CheckpointTimeKey = CheckpointKey + "-timestamp"
)

// Event reasons, as pkg/k8s/events.go spells them.
const (
	EventSuccessfullyReconciled = "SuccessfullyReconciled"
	EventFailedReconcile        = "FailedReconcile"
	EventFailedNetworkReconcile = "FailedNetworkReconcile"
	EventBackendNotFound        = "BackendNotFound"
)

// reconcile is targetGroupBindingReconciler.reconcile: clean up a binding
// being deleted, otherwise add the finalizer, reconcile the targets, and
// only when that needs no requeue record the generation and an event.
func (c *Controller) reconcile(ctx context.Context, key types.NamespacedName) (requeue bool, err error) {
	var tgb lbc.TargetGroupBinding
	if err := c.cache.Get(ctx, key, &tgb); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !tgb.DeletionTimestamp.IsZero() {
		return false, c.cleanup(ctx, &tgb)
	}
	if !controllerutil.ContainsFinalizer(&tgb, Finalizer) {
		base := tgb.DeepCopy()
		controllerutil.AddFinalizer(&tgb, Finalizer)
		if err := c.client.Patch(ctx, &tgb, client.MergeFrom(base)); err != nil {
			return false, err
		}
	}
	requeue, skipped, err := c.reconcileTargets(ctx, &tgb)
	if err != nil {
		c.events.Event(&tgb, corev1.EventTypeWarning, EventFailedReconcile, "Failed reconcile due to "+err.Error())
		return false, err
	}
	if requeue || skipped {
		return requeue, nil
	}
	if err := MarkReconciled(ctx, c.client, &tgb); err != nil {
		return false, err
	}
	c.events.Event(&tgb, corev1.EventTypeNormal, EventSuccessfullyReconciled, "Successfully reconciled")
	return false, nil
}

// reconcileTargets is defaultResourceManager.Reconcile and
// reconcileWithIPTargetType. A binding without a target type is refused:
// the controller's own webhook defaults it, and none runs here. Instance
// bindings are not reconciled by the stand-in. skipped reports a reconcile
// its checkpoint made unnecessary, requeue one that waits for target
// health or for EC2.
func (c *Controller) reconcileTargets(ctx context.Context, tgb *lbc.TargetGroupBinding) (requeue, skipped bool, err error) {
	if tgb.Spec.TargetType == nil {
		return false, false, fmt.Errorf("targetType is not specified: %s/%s", tgb.Namespace, tgb.Name)
	}
	if *tgb.Spec.TargetType != lbc.TargetTypeIP {
		return false, true, nil
	}
	gate := corev1.PodConditionType(lbc.ReadinessGatePrefix + tgb.Name)
	oldCheckpoint := tgb.Annotations[CheckpointKey]
	eps, err := c.resolve(ctx, tgb)
	if errors.Is(err, errBackendNotFound) {
		c.events.Event(tgb, corev1.EventTypeWarning, EventBackendNotFound, err.Error())
		return false, false, c.deregisterAll(ctx, tgb)
	}
	if err != nil {
		return false, false, err
	}
	checkpoint, err := checkpointOf(eps, tgb)
	if err != nil {
		return false, false, err
	}
	if checkpoint == oldCheckpoint && !needGateFlip(eps, gate) {
		return false, true, nil
	}

	arn := tgb.Spec.TargetGroupARN
	targets, err := c.targets.list(ctx, arn)
	if err != nil {
		return false, false, err
	}
	// Draining targets are on their way out already: they count as absent
	// (partitionTargetsByDrainingStatus, matchPodEndpointWithTargets).
	byTarget := map[target]targetInfo{}
	for _, t := range targets {
		if !t.is(elbv2types.TargetHealthStateEnumDraining) {
			byTarget[t.target] = t
		}
	}
	var add []endpoint
	matched := map[target]bool{}
	for _, e := range eps {
		if _, ok := byTarget[e.target]; ok {
			matched[e.target] = true
		} else {
			add = append(add, e)
		}
	}
	var remove []target
	for t := range byTarget {
		if !matched[t] {
			remove = append(remove, t)
		}
	}
	networkErr := c.network.endpointSGs(ctx)
	if networkErr != nil {
		c.opts.Log.Info("requesting network requeue", "binding", tgb.Name, "err", networkErr)
		c.events.Event(tgb, corev1.EventTypeWarning, EventFailedNetworkReconcile, networkErr.Error())
	}
	probe := slices.ContainsFunc(eps, func(e endpoint) bool {
		t, ok := byTarget[e.target]
		return ok && hasGate(e.pod, gate) && !t.is(elbv2types.TargetHealthStateEnumHealthy)
	})
	// Clear the checkpoint before changing anything, so a failure part way
	// is not skipped next time.
	if len(add) > 0 || len(remove) > 0 || networkErr != nil || probe {
		if err := c.saveCheckpoint(ctx, tgb, ""); err != nil {
			return false, false, err
		}
	}
	if len(remove) > 0 {
		if err := c.deregister(ctx, arn, remove); err != nil {
			return false, false, err
		}
	}
	if len(add) > 0 {
		if err := c.register(ctx, tgb, add); err != nil {
			return false, false, err
		}
	}
	for _, e := range eps {
		th := registering
		if t, ok := byTarget[e.target]; ok {
			th = t.health
		}
		again, err := c.setGate(ctx, e.pod, gate, th)
		if err != nil {
			return false, false, err
		}
		requeue = requeue || again
	}
	if requeue || networkErr != nil {
		return true, false, nil
	}
	return false, false, c.saveCheckpoint(ctx, tgb, checkpoint)
}

// checkpointOf is calculateTGBReconcileCheckpoint: a hash of the sorted
// endpoints and one of the spec.
func checkpointOf(eps []endpoint, tgb *lbc.TargetGroupBinding) (string, error) {
	ids := make([]string, 0, len(eps))
	for _, e := range eps {
		ids = append(ids, e.String())
	}
	slices.Sort(ids)
	spec, err := json.Marshal(tgb.Spec)
	if err != nil {
		return "", err
	}
	a, b := sha256.Sum256([]byte(strings.Join(ids, ","))), sha256.Sum256(spec)
	return hex.EncodeToString(a[:]) + "/" + hex.EncodeToString(b[:]), nil
}

// saveCheckpoint is updateTGBCheckPoint.
func (c *Controller) saveCheckpoint(ctx context.Context, tgb *lbc.TargetGroupBinding, cp string) error {
	if tgb.Annotations[CheckpointKey] == cp {
		return nil
	}
	base := tgb.DeepCopy()
	if tgb.Annotations == nil {
		tgb.Annotations = map[string]string{}
	}
	tgb.Annotations[CheckpointKey] = cp
	tgb.Annotations[CheckpointTimeKey] = strconv.FormatInt(time.Now().Unix(), 10)
	return c.client.Patch(ctx, tgb, client.MergeFrom(base))
}

// register is registerPodEndpoints: a pod IP outside the VPC's blocks is
// registered in zone "all"; if ELBv2 answers that a zone is required, the
// call is retried once with each pod's node's zone.
func (c *Controller) register(ctx context.Context, tgb *lbc.TargetGroupBinding, eps []endpoint) error {
	outside, err := c.network.outsideVPC(ctx)
	if err != nil {
		return err
	}
	descs := func(podZone bool) ([]elbv2types.TargetDescription, error) {
		var out []elbv2types.TargetDescription
		for _, e := range eps {
			d := description(e.target)
			ip, err := netip.ParseAddr(e.ip)
			if err != nil {
				return nil, err
			}
			if outside(ip) {
				d.AvailabilityZone = aws.String("all")
				if podZone {
					var node corev1.Node
					if err := c.cache.Get(ctx, types.NamespacedName{Name: e.pod.Spec.NodeName}, &node); err != nil {
						return nil, err
					}
					d.AvailabilityZone = aws.String(node.Labels[corev1.LabelTopologyZone])
				}
			}
			out = append(out, d)
		}
		return out, nil
	}
	arn := aws.String(tgb.Spec.TargetGroupARN)
	ds, err := descs(false)
	if err != nil {
		return err
	}
	_, err = c.opts.ELBv2.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{TargetGroupArn: arn, Targets: ds})
	if isZoneError(err) {
		if ds, err = descs(true); err != nil {
			return err
		}
		_, err = c.opts.ELBv2.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{TargetGroupArn: arn, Targets: ds})
	}
	if err != nil {
		return fmt.Errorf("register targets: %w", err)
	}
	ts := make([]target, len(eps))
	for i, e := range eps {
		ts[i] = e.target
	}
	c.targets.changed(tgb.Spec.TargetGroupARN, ts, true)
	c.opts.Log.Info("registered targets", "binding", tgb.Name, "targets", ts)
	return nil
}

// isZoneError is isAZValidationError.
func isZoneError(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" &&
		strings.Contains(apiErr.ErrorMessage(), "you must specify an Availability Zone")
}

func (c *Controller) deregister(ctx context.Context, arn string, ts []target) error {
	ds := make([]elbv2types.TargetDescription, len(ts))
	for i, t := range ts {
		ds[i] = description(t)
	}
	if _, err := c.opts.ELBv2.DeregisterTargets(ctx, &awselbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: ds}); err != nil {
		return fmt.Errorf("deregister targets: %w", err)
	}
	c.targets.changed(arn, ts, false)
	c.opts.Log.Info("deregistered targets", "arn", arn, "targets", ts)
	return nil
}

// deregisterAll is cleanupTargets: a target group already gone is clean.
func (c *Controller) deregisterAll(ctx context.Context, tgb *lbc.TargetGroupBinding) error {
	ts, err := c.targets.list(ctx, tgb.Spec.TargetGroupARN)
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "TargetGroupNotFound" || apiErr.ErrorCode() == "ValidationError") {
		return nil
	}
	if err != nil || len(ts) == 0 {
		return err
	}
	all := make([]target, len(ts))
	for i, t := range ts {
		all[i] = t.target
	}
	return c.deregister(ctx, tgb.Spec.TargetGroupARN, all)
}

// cleanup is cleanupTargetGroupBinding with Cleanup: deregister the
// targets, set every gate the binding names True, drop the finalizer.
func (c *Controller) cleanup(ctx context.Context, tgb *lbc.TargetGroupBinding) error {
	if !controllerutil.ContainsFinalizer(tgb, Finalizer) {
		return nil
	}
	if err := c.deregisterAll(ctx, tgb); err != nil {
		return err
	}
	var pods corev1.PodList
	if err := c.cache.List(ctx, &pods, client.InNamespace(tgb.Namespace)); err != nil {
		return err
	}
	gate := corev1.PodConditionType(lbc.ReadinessGatePrefix + tgb.Name)
	for i := range pods.Items {
		if _, err := c.setGate(ctx, &pods.Items[i], gate, deletedBinding); err != nil {
			return err
		}
	}
	base := tgb.DeepCopy()
	controllerutil.RemoveFinalizer(tgb, Finalizer)
	return client.IgnoreNotFound(c.client.Patch(ctx, tgb, client.MergeFrom(base)))
}

func description(t target) elbv2types.TargetDescription {
	return elbv2types.TargetDescription{Id: aws.String(t.ip), Port: aws.Int32(t.port)}
}
