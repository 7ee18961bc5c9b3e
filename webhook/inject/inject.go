package inject

import (
	"encoding/json"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// Apply mutates pod in place to hold its termination while the load balancer
// drains it, and reports what it did. Applying it again to its own result
// changes nothing. It returns injected=false, and leaves the pod untouched,
// when no container serves any of the targets. An error means the pod's own
// annotations are invalid; the pod is then left as it was.
func Apply(pod *corev1.Pod, backends []lbc.Backend, o Options) (rec contract.Record, injected bool, err error) {
	ov, err := readOverrides(pod.Annotations, o)
	if err != nil {
		return contract.Record{}, false, err
	}
	plan := planHolds(&pod.Spec, backends)
	if len(plan.containers) == 0 {
		return contract.Record{}, false, nil
	}
	prev := contract.ParseRecord(pod.Annotations)
	if prev != nil && (prev.Mode != string(ov.mode) || prev.MaxHoldSeconds != int64(ov.maxHold.Seconds())) {
		// A pass of another mode or length held this pod (its spec was
		// copied from a live pod, or the options changed since): its holds
		// are undone and this pass's put in their place. Kept, they would
		// disagree with this pass's record, and the next pass, reading that
		// record, would hold them again, over the old hold.
		Remove(pod)
		prev = nil
	}
	done := heldBefore(pod.Spec.Containers, prev, func(r *contract.Record) []string { return r.Containers })
	doneSidecars := heldBefore(pod.Spec.InitContainers, prev, func(r *contract.Record) []string { return r.Sidecars })
	userSleep := time.Duration(0)
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if slices.Contains(plan.containers, c.Name) {
			userSleep = max(userSleep, userSleepOf(c, done[c.Name]))
		}
	}
	sidecars := sidecarsToHold(&pod.Spec, doneSidecars)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if slices.Contains(sidecars, c.Name) {
			userSleep = max(userSleep, userSleepOf(c, doneSidecars[c.Name]))
		}
	}
	budget := shutdownBudget(&pod.Spec, prev, userSleep, o)
	needHelper := false
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if !slices.Contains(plan.containers, c.Name) {
			continue
		}
		if isHelperHook(c) {
			needHelper = true
			continue
		}
		if done[c.Name] {
			continue
		}
		if holdContainer(c, ov, o, plan.ports, budget) {
			needHelper = true
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		switch {
		case !slices.Contains(sidecars, c.Name):
		case isHelperHook(c):
			needHelper = true
		case !doneSidecars[c.Name] && holdContainer(c, ov, o, plan.ports, budget):
			needHelper = true
		}
	}
	if needHelper {
		addHelper(&pod.Spec, o)
		addTrust(&pod.Spec, o)
	}
	gatesSkipped := addReadinessGates(pod, plan.matched, o)
	setGracePeriod(&pod.Spec, budget, ov.maxHold)
	rec = newRecord(ov, plan)
	rec.Sidecars = sidecars
	rec.ShutdownBudgetSeconds = ptr.To(int64(budget / time.Second))
	rec.ReadinessGatesSkipped = gatesSkipped
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[contract.InjectedKey] = marshalRecord(rec)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[contract.ManagedLabel] = "true"
	return rec, true, nil
}

// sidecarsToHold names the native sidecars whose own preStop must wait for
// the hold. The kubelet runs a sidecar's preStop as soon as the pod is
// deleted, alongside the app containers' holds: an Envoy "drain listeners"
// hook would stop serving while the load balancer still sends. Holding the
// sidecar too runs that hook after the hold, as for an app container. A
// sidecar without a preStop of its own needs nothing: the kubelet stops it
// only after every app container has stopped.
func sidecarsToHold(spec *corev1.PodSpec, done map[string]bool) []string {
	var out []string
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			continue
		}
		if preStopOf(c) != nil || done[c.Name] {
			out = append(out, c.Name)
		}
	}
	return out
}

// holdContainer puts the hold in front of c's own preStop and reports whether
// the hold needs the helper binary in the pod. Sleep mode uses Kubernetes'
// native sleep action unless the container's own hook must run after it,
// which only the helper can sequence.
func holdContainer(c *corev1.Container, ov overrides, o Options, ports []int32, budget time.Duration) bool {
	var own *corev1.LifecycleHandler
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		own = c.Lifecycle.PreStop.DeepCopy()
	}
	if c.Lifecycle == nil {
		c.Lifecycle = &corev1.Lifecycle{}
	}
	if ov.mode == contract.ModeSleep && (own == nil || own.Sleep != nil) {
		secs := int64(ov.maxHold / time.Second)
		if own != nil {
			secs += own.Sleep.Seconds
		}
		c.Lifecycle.PreStop = &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: secs}}
		return false
	}
	if own != nil && own.HTTPGet != nil {
		resolveNamedPort(own.HTTPGet, c.Ports)
	}
	spec := contract.Spec{
		Mode:     ov.mode,
		MaxHold:  ov.maxHold,
		Fallback: min(o.Fallback, ov.maxHold),
		// The quiet period leaves at least half the hold to the rest.
		QuietPeriod:    min(ov.quietMin, ov.maxHold/2),
		QuietGaps:      ov.quietGaps,
		QuietPeriodMax: min(ov.quietMax, ov.maxHold/2),
		Ports:          ports,
		Then:           toHandler(own),
		Budget:         budget,
	}
	c.Lifecycle.PreStop = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: spec.Command(contract.HelperPath)}}
	addMount(c, corev1.VolumeMount{Name: contract.VolumeName, MountPath: contract.MountPath, ReadOnly: true})
	addEnv(c, []corev1.EnvVar{{Name: contract.EnvWatcherURL, Value: o.WatcherURL}})
	return true
}

// resolveNamedPort turns a named httpGet port into its number, since the
// helper runs the request itself and cannot see the container's port names.
func resolveNamedPort(h *corev1.HTTPGetAction, ports []corev1.ContainerPort) {
	if h.Port.Type != intstr.String {
		return
	}
	for _, p := range ports {
		if p.Name == h.Port.StrVal {
			h.Port = intstr.FromInt32(p.ContainerPort)
			return
		}
	}
}

// toHandler copies a preStop into the helper's own form of it. Both have the
// same JSON, and neither can fail to encode or decode it: they hold only
// strings and numbers, and the port of either form reads the other's.
func toHandler(h *corev1.LifecycleHandler) *contract.Handler {
	if h == nil {
		return nil
	}
	b, _ := json.Marshal(h)
	var out contract.Handler
	_ = json.Unmarshal(b, &out)
	return &out
}

// heldBefore names the containers an earlier pass held whose hold is still
// in place. A later webhook (a mesh or platform injector) may have replaced
// or removed a preStop since: such a container is held again, with the new
// preStop run after the hold, rather than trusted to the record.
//
// App containers and sidecars are looked up apart (recorded picks which
// list), as the webhook runs before the apiserver refuses a name both use.
func heldBefore(cs []corev1.Container, prev *contract.Record, recorded func(*contract.Record) []string) map[string]bool {
	done := map[string]bool{}
	if prev == nil {
		return done
	}
	for _, c := range cs {
		if !slices.Contains(recorded(prev), c.Name) {
			continue
		}
		h := preStopOf(&c)
		switch {
		case isHelperHook(&c):
			done[c.Name] = true
		case h != nil && h.Sleep != nil && prev.Mode == string(contract.ModeSleep) && h.Sleep.Seconds >= prev.MaxHoldSeconds:
			// Sleep mode's native sleep: the hold plus the container's own.
			done[c.Name] = true
		}
	}
	return done
}

func preStopOf(c *corev1.Container) *corev1.LifecycleHandler {
	if c.Lifecycle == nil {
		return nil
	}
	return c.Lifecycle.PreStop
}

func isHelperHook(c *corev1.Container) bool {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
		return false
	}
	cmd := c.Lifecycle.PreStop.Exec.Command
	return len(cmd) > 0 && cmd[0] == contract.HelperPath
}

// userSleepOf is how long the container's own preStop sleeps after our hold,
// which the grace period must also cover. Once held in sleep mode, the
// container's sleep is ours and its own, already counted by the earlier pass.
func userSleepOf(c *corev1.Container, held bool) time.Duration {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return 0
	}
	h := c.Lifecycle.PreStop
	if h.Sleep != nil && !held {
		return time.Duration(h.Sleep.Seconds) * time.Second
	}
	if isHelperHook(c) {
		if s, err := contract.Parse(h.Exec.Command[1:]); err == nil && s.Then != nil && s.Then.Sleep != nil {
			return time.Duration(s.Then.Sleep.Seconds) * time.Second
		}
	}
	return 0
}

// addMount mounts a volume into c unless c mounts it already; the preStop
// exec runs in c, so the helper sees c's mounts.
func addMount(c *corev1.Container, want corev1.VolumeMount) {
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == want.Name }) {
		c.VolumeMounts = append(c.VolumeMounts, want)
	}
}

// addEnv gives c the helper's downward-API environment and extra, leaving
// variables c already has.
func addEnv(c *corev1.Container, extra []corev1.EnvVar) {
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	want := append([]corev1.EnvVar{
		{Name: contract.EnvPodName, ValueFrom: field("metadata.name")},
		{Name: contract.EnvPodNamespace, ValueFrom: field("metadata.namespace")},
		{Name: contract.EnvPodUID, ValueFrom: field("metadata.uid")},
		{Name: contract.EnvPodIP, ValueFrom: field("status.podIP")},
		{Name: contract.EnvHostIP, ValueFrom: field("status.hostIP")},
	}, extra...)
	for _, e := range want {
		if !slices.ContainsFunc(c.Env, func(have corev1.EnvVar) bool { return have.Name == e.Name }) {
			c.Env = append(c.Env, e)
		}
	}
}

// addHelper adds the volume and the init container that copies the helper
// into it. The init container is appended: only app containers run the
// helper, and they start after every init container, while prepending would
// shift the indexes of the pod's own init containers and so move fields this
// k8s.io/api version does not know from one container to another in the diff.
func addHelper(spec *corev1.PodSpec, o Options) {
	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == contract.VolumeName }) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{
			Name: contract.VolumeName,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				SizeLimit: ptr.To(helperVolumeSize),
			}},
		})
	}
	if slices.ContainsFunc(spec.InitContainers, func(c corev1.Container) bool { return c.Name == contract.InitContainerName }) {
		return
	}
	init := corev1.Container{
		Name:    contract.InitContainerName,
		Image:   o.HelperImage,
		Command: []string{o.HelperImagePath, contract.CmdInstall, contract.HelperPath},
		VolumeMounts: []corev1.VolumeMount{
			{Name: contract.VolumeName, MountPath: contract.MountPath},
		},
		Resources:                o.InitResources,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          restrictedSecurityContext(),
	}
	spec.InitContainers = append(spec.InitContainers, init)
}

// restrictedSecurityContext satisfies the restricted Pod Security Standard
// whatever the pod's own settings; 65532 is the distroless nonroot user.
func restrictedSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](65532),
		RunAsGroup:               ptr.To[int64](65532),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Privileged:               ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// addReadinessGates adds the load balancer controller's readiness gate of
// each binding in front of the pod, and returns why it left out those of
// bindings no controller has reconciled. A gate that no controller sets
// keeps the pod NotReady for ever: hence also the switch for the whole
// webhook and the per-pod opt-out.
func addReadinessGates(pod *corev1.Pod, matched []lbc.Backend, o Options) (skipped []string) {
	if o.NoReadinessGates || pod.Annotations[contract.ReadinessGateKey] == "disabled" {
		return nil
	}
	for _, t := range matched {
		switch {
		case t.TargetGroupBinding == "":
		case t.NotReconciled != "":
			skipped = appendNew(skipped, t.NotReconciled)
		default:
			addReadinessGate(&pod.Spec, corev1.PodConditionType(lbc.ReadinessGatePrefix+t.TargetGroupBinding))
		}
	}
	return skipped
}

func addReadinessGate(spec *corev1.PodSpec, t corev1.PodConditionType) {
	if slices.ContainsFunc(spec.ReadinessGates, func(g corev1.PodReadinessGate) bool { return g.ConditionType == t }) {
		return
	}
	spec.ReadinessGates = append(spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: t})
}

// shutdownBudget is the application's shutdown budget, which the hold
// comes on top of: the pod's own grace period (Options.ShutdownBudget when
// it sets none, or zero: a pod killed at once has no budget to keep, and
// the default keeps its hold from being cut short), which already covers
// its own preStop, or that preStop's sleep when longer. A pod injected before keeps the budget its record
// holds: its grace period has the hold in it already.
func shutdownBudget(spec *corev1.PodSpec, prev *contract.Record, userSleep time.Duration, o Options) time.Duration {
	switch {
	case prev != nil && prev.ShutdownBudgetSeconds != nil:
		return time.Duration(*prev.ShutdownBudgetSeconds) * time.Second
	case prev != nil && spec.TerminationGracePeriodSeconds != nil:
		// Injected by a version that recorded no budget, whose grace period
		// has the hold in it.
		return time.Duration(max(min(*spec.TerminationGracePeriodSeconds, maxBudgetSeconds)-prev.MaxHoldSeconds, 0)) * time.Second
	}
	budget := o.ShutdownBudget
	if g := spec.TerminationGracePeriodSeconds; g != nil && *g > 0 {
		// Capped where budget plus hold could overflow a time.Duration
		// (about 292 years); the hold is then a rounding error anyway.
		budget = time.Duration(min(max(*g, 0), maxBudgetSeconds)) * time.Second
	}
	return max(budget, userSleep)
}

// maxBudgetSeconds keeps budget plus hold within a time.Duration.
const maxBudgetSeconds = int64(100 * 365 * 24 * 3600)

// setGracePeriod makes the grace period the application's budget plus the
// longest hold, so the hold never eats into the budget; it never lowers a
// grace period (one beyond maxBudgetSeconds stays as it is).
func setGracePeriod(spec *corev1.PodSpec, budget, maxHold time.Duration) {
	secs := int64((budget + maxHold) / time.Second)
	if g := spec.TerminationGracePeriodSeconds; g != nil && *g > secs {
		secs = *g
	}
	spec.TerminationGracePeriodSeconds = &secs
}
