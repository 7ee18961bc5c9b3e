package contract

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Keys albdrain reads or writes on pods and namespaces.
const (
	// AnnotationPrefix begins every key below: albdrain's own.
	AnnotationPrefix = "albdrain.io/"
	// InjectKey is the namespace label that opts a namespace in (value
	// "enabled") and the pod annotation that opts a pod out (value "disabled").
	InjectKey = "albdrain.io/inject"
	// ModeKey is the pod annotation overriding the hold mode.
	ModeKey = "albdrain.io/mode"
	// MaxHoldKey is the pod annotation overriding the maximum hold, in seconds.
	MaxHoldKey = "albdrain.io/max-hold-seconds"
	// QuietGapsKey is the pod annotation overriding k, the quiet period in
	// mean gaps between the load balancer's requests to the pod.
	QuietGapsKey = "albdrain.io/quiet-gaps"
	// QuietPeriodKey is the pod annotation overriding the shortest quiet period, in seconds.
	QuietPeriodKey = "albdrain.io/quiet-period-seconds"
	// QuietPeriodMaxKey is the pod annotation overriding the longest quiet period, in seconds.
	QuietPeriodMaxKey = "albdrain.io/quiet-period-max-seconds"
	// ManagedLabel marks pods the webhook mutated so the watcher caches only those.
	ManagedLabel = "albdrain.io/managed"
	// InjectedKey is the annotation recording what was injected and why.
	InjectedKey = "albdrain.io/injected"
	// SkippedKey is the annotation recording why a pod behind a load balancer was left alone.
	SkippedKey = "albdrain.io/skipped"
	// ReadinessGateKey is the pod annotation that, with value "disabled",
	// keeps the webhook from adding the load balancer controller's
	// readiness gates, for pods whose bindings no controller may reconcile.
	ReadinessGateKey = "albdrain.io/readiness-gate"
	// DrainingSinceKey is the annotation the watcher writes on a terminating
	// pod under the draining release policy: a JSON object from target-group
	// ARN to when the pod's target was first seen draining there (RFC 3339),
	// so a hold resumed on another replica settles from the same start.
	DrainingSinceKey = "albdrain.io/draining-since"
	// OutcomeLabel labels the one event on a pod that says how its hold
	// ended with the hold's outcome (an Outcome).
	OutcomeLabel = "albdrain.io/outcome"
)

// Names of the objects the webhook adds to a pod.
const (
	InitContainerName = "albdrain-init"
	VolumeName        = "albdrain-bin"
	MountPath         = "/opt/albdrain"
	HelperPath        = MountPath + "/albdrain-hold"
)

// The trust volume: a projected volume the webhook adds beside the helper's,
// which the kubelet keeps current, holding the pod's identity towards the
// watcher and the CA bundle the helper trusts for it. Both are read afresh at
// each attempt, since the kubelet replaces them while the pod runs.
const (
	TrustVolumeName = "albdrain-trust"
	TrustMountPath  = "/var/run/secrets/albdrain.io"
	// TokenFile is a ServiceAccount token bound to the pod, for
	// TokenAudience, sent as a bearer token with every request.
	TokenFile = "token"
	// CABundleFile is the watcher's CA bundle, from the ConfigMap
	// CABundleConfigMap that albdrain keeps in each namespace of its pods.
	CABundleFile = "ca.crt"
	// TokenAudience is the audience of the pod's token: the apiserver
	// accepts it for albdrain only, so it is worth nothing elsewhere.
	TokenAudience = "albdrain"
	// TokenExpirationSeconds is the token's lifetime, the shortest the
	// apiserver issues; the kubelet renews it at 80% of that.
	TokenExpirationSeconds = 600
	// CABundleConfigMap names the ConfigMap, and CABundleFile its key, that
	// holds the CA bundle in every namespace albdrain manages pods in.
	CABundleConfigMap = "albdrain-ca.crt"
)

// Environment variables the helper reads; the webhook fills them from the downward API.
const (
	EnvPodName      = "ALBDRAIN_POD_NAME"
	EnvPodNamespace = "ALBDRAIN_POD_NAMESPACE"
	EnvPodUID       = "ALBDRAIN_POD_UID"
	EnvPodIP        = "ALBDRAIN_POD_IP"
	// EnvHostIP is the node's IP (status.hostIP): the kubelet's probes come
	// from it, so the helper does not count them as load-balancer traffic.
	EnvHostIP     = "ALBDRAIN_HOST_IP"
	EnvWatcherURL = "ALBDRAIN_WATCHER_URL"
	// EnvWatcherCA optionally holds the PEM bundle the helper trusts for an
	// https watcher URL. Only pods injected by albdrain before the trust
	// volume have it: it is the CA of their creation and is never refreshed.
	EnvWatcherCA = "ALBDRAIN_WATCHER_CA"
	// EnvTrustDir is the directory of the trust volume's files (TokenFile,
	// CABundleFile), TrustMountPath in a container.
	EnvTrustDir = "ALBDRAIN_TRUST_DIR"
)

// Mode is how a pod's preStop holds.
type Mode string

const (
	// ModeWait holds until the watcher reports the pod out of service.
	ModeWait Mode = "wait"
	// ModeSleep holds for a fixed time, without the watcher.
	ModeSleep Mode = "sleep"
)

// ParseMode accepts the mode names a user may write in an annotation or flag.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeWait, ModeSleep:
		return m, nil
	}
	return "", fmt.Errorf("mode %q: must be %q or %q", s, ModeWait, ModeSleep)
}

// Subcommands of the helper binary.
const (
	CmdInstall = "install"
	CmdWait    = "wait"
	CmdSleep   = "sleep"
)

// Spec is one container's preStop hold as the helper runs it.
type Spec struct {
	// Mode selects waiting for the watcher or sleeping.
	Mode Mode
	// MaxHold bounds the whole hold (wait mode) or is the sleep (sleep mode).
	MaxHold time.Duration
	// Fallback is how long to sleep when the watcher cannot answer; never past MaxHold.
	Fallback time.Duration
	// QuietPeriod is the shortest time the pod must receive no load-balancer
	// traffic on Ports before release.
	QuietPeriod time.Duration
	// QuietGaps is k: the quiet period is k mean gaps between the load
	// balancer's arrivals seen at the start of the hold, within QuietPeriod
	// and QuietPeriodMax. Zero makes the quiet period QuietPeriod.
	QuietGaps int
	// QuietPeriodMax is the longest quiet period; zero means QuietPeriod.
	QuietPeriodMax time.Duration
	// Ports are the container ports the load balancer targets.
	Ports []int32
	// Then is the container's own preStop, run after the hold; nil when it had none.
	Then *Handler
	// Budget is the application's shutdown budget, its own grace period,
	// which the hold must leave it (wait mode); zero when unknown.
	Budget time.Duration
}

// Command renders the preStop exec command for the helper at path.
func (s Spec) Command(path string) []string {
	sub := CmdWait
	if s.Mode == ModeSleep {
		sub = CmdSleep
	}
	cmd := []string{path, sub, "--max-hold=" + s.MaxHold.String()}
	if s.Mode == ModeWait {
		cmd = append(cmd, "--fallback="+s.Fallback.String(), "--quiet-period="+s.QuietPeriod.String())
		if s.QuietGaps > 0 {
			cmd = append(cmd, "--quiet-gaps="+strconv.Itoa(s.QuietGaps), "--quiet-period-max="+s.QuietPeriodMax.String())
		}
		if s.Budget > 0 {
			cmd = append(cmd, "--shutdown-budget="+s.Budget.String())
		}
		for _, p := range s.Ports {
			cmd = append(cmd, "--port="+strconv.Itoa(int(p)))
		}
	}
	if s.Then != nil {
		// Marshalling a Handler cannot fail: it holds only strings and numbers.
		b, _ := json.Marshal(s.Then)
		cmd = append(cmd, "--then="+string(b))
	}
	return cmd
}

// Parse reads a helper command line (without the program name) back into a Spec.
func Parse(args []string) (Spec, error) {
	if len(args) == 0 {
		return Spec{}, errors.New("missing subcommand: want wait or sleep")
	}
	var s Spec
	switch args[0] {
	case CmdWait:
		s.Mode = ModeWait
	case CmdSleep:
		s.Mode = ModeSleep
	default:
		return Spec{}, fmt.Errorf("unknown subcommand %q: want wait or sleep", args[0])
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.DurationVar(&s.MaxHold, "max-hold", 0, "")
	fs.DurationVar(&s.Fallback, "fallback", 0, "")
	fs.DurationVar(&s.QuietPeriod, "quiet-period", 0, "")
	fs.IntVar(&s.QuietGaps, "quiet-gaps", 0, "")
	fs.DurationVar(&s.QuietPeriodMax, "quiet-period-max", 0, "")
	fs.DurationVar(&s.Budget, "shutdown-budget", 0, "")
	fs.Func("port", "", func(v string) error {
		p, err := strconv.ParseUint(v, 10, 16)
		if err != nil || p == 0 {
			return fmt.Errorf("port %q: want 1-65535", v)
		}
		s.Ports = append(s.Ports, int32(p))
		return nil
	})
	fs.Func("then", "", func(v string) error {
		var h Handler
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&h); err != nil {
			return fmt.Errorf("then: %w", err)
		}
		s.Then = &h
		return nil
	})
	if err := fs.Parse(args[1:]); err != nil {
		return Spec{}, err
	}
	if fs.NArg() > 0 {
		return Spec{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if s.MaxHold <= 0 {
		return Spec{}, errors.New("max-hold must be positive")
	}
	if s.Fallback < 0 || s.QuietPeriod < 0 || s.QuietGaps < 0 || s.Budget < 0 {
		return Spec{}, errors.New("fallback, quiet-period, quiet-gaps and shutdown-budget must not be negative")
	}
	if s.QuietGaps > 0 && s.QuietPeriodMax < s.QuietPeriod {
		return Spec{}, errors.New("quiet-period-max must be at least quiet-period")
	}
	return s, nil
}
