package hold

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/drain/watcher/release"
	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// markTimeout bounds writing the draining start on the pod.
const markTimeout = 10 * time.Second

// DrainingMarker keeps, on the pod, when its target was first seen draining
// in each target group. A hold resumed on another replica (after a rollout
// of albdrain, or a dropped connection) reads it back, so the settle time of
// the draining policy does not start over.
type DrainingMarker interface {
	MarkDraining(ctx context.Context, pod *corev1.Pod, since map[string]time.Time) error
}

// PodMarker writes the draining start as the contract.DrainingSinceKey
// annotation with a merge patch, which needs pods/patch.
type PodMarker struct {
	Client client.Writer
}

// MarkDraining implements DrainingMarker.
func (m PodMarker) MarkDraining(ctx context.Context, pod *corev1.Pod, since map[string]time.Time) error {
	value, err := json.Marshal(since)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         pod.UID, // the patch fails rather than mark a same-named successor
		"annotations": map[string]string{contract.DrainingSinceKey: string(value)},
	}})
	if err != nil {
		return err
	}
	return m.Client.Patch(ctx, pod, client.RawPatch("application/merge-patch+json", patch))
}

// drainingSince reads the draining starts a previous hold of pod recorded;
// an unreadable annotation counts as none, which only restarts the settle
// time.
func drainingSince(pod *corev1.Pod) map[string]time.Time {
	since := map[string]time.Time{}
	if v, ok := pod.Annotations[contract.DrainingSinceKey]; ok {
		_ = json.Unmarshal([]byte(v), &since)
	}
	return since
}

// seed starts each target's observation from a recorded draining start.
func seed(targets []lbc.Registration, since map[string]time.Time) []release.Observation {
	obs := make([]release.Observation, len(targets))
	for i, t := range targets {
		obs[i].DrainingSince = since[t.TargetGroupARN]
	}
	return obs
}

// markDraining records draining starts not recorded yet. A failure only
// means a resumed hold would settle later, so it is logged by the caller.
func (h *Holder) markDraining(ctx context.Context, pod *corev1.Pod, targets []lbc.Registration, obs []release.Observation, since map[string]time.Time) error {
	if h.Marker == nil || h.Policy != release.PolicyDraining {
		return nil
	}
	changed := false
	for i, t := range targets {
		if s := obs[i].DrainingSince; !s.IsZero() && since[t.TargetGroupARN].IsZero() {
			since[t.TargetGroupARN] = s.UTC()
			changed = true
		}
	}
	if !changed {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	return h.Marker.MarkDraining(ctx, pod, since)
}
