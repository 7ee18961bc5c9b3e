package node_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/e2e/image"
	"github.com/albdrain/albdrain/e2e/node"
	"github.com/albdrain/albdrain/internal/contract"
)

// sigtermLine is what podapp prints when SIGTERM arrives.
const sigtermLine = "podapp: SIGTERM"

// helperPod is albdrain's injection written by hand: the init container
// installs the helper from albdrain's image into an emptyDir, and the app's
// preStop runs it in sleep mode, under a restricted security context.
func helperPod(nodeName string, hold time.Duration) *corev1.Pod {
	restricted := &corev1.SecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
		ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	mount := []corev1.VolumeMount{{Name: contract.VolumeName, MountPath: contract.MountPath}}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "helper", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			Volumes:                       []corev1.Volume{{Name: contract.VolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers: []corev1.Container{{
				Name: contract.InitContainerName, Image: albdrainRef, ImagePullPolicy: corev1.PullNever,
				Command:      []string{image.HelperPath, contract.CmdInstall, contract.HelperPath},
				VolumeMounts: mount, SecurityContext: restricted,
			}},
			Containers: []corev1.Container{{
				Name: "app", Image: podappRef, ImagePullPolicy: corev1.PullNever,
				VolumeMounts: mount, SecurityContext: restricted,
				Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
					Command: []string{contract.HelperPath, "sleep", "--max-hold=" + hold.String()},
				}}},
			}},
		},
	}
}

// TestHelperPreStopOnRealNode runs albdrain's helper as a real kubelet runs
// it: installed by an init container from albdrain's image, then exec'd as
// the app's preStop when the pod is deleted. Everything is checked from the
// node: the runtime's record of the init container's image, the helper's
// process in the pod's cgroup, and the app's SIGTERM in its container log.
func TestHelperPreStopOnRealNode(t *testing.T) {
	r := startRealNode(t, nodeSetup{albdrain: true})
	env, n := r.env, r.n
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const hold = 2 * time.Second
	pod := helperPod(n.Name, hold)
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitPod(ctx, t, env.Client, pod, func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
	if got := pod.Status.InitContainerStatuses[0].State.Terminated; got == nil || got.ExitCode != 0 {
		t.Fatalf("init container state %+v, want terminated with exit code 0", pod.Status.InitContainerStatuses[0].State)
	}

	// The runtime's record: the init container ran albdrain's image, the one built here.
	out, err := n.Ctr(ctx, "containers", "list", `labels."io.kubernetes.container.name"==`+contract.InitContainerName)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), albdrainRef) {
		t.Errorf("containerd's init container does not run %s:\n%s", albdrainRef, out)
	}
	out, err = n.Ctr(ctx, "images", "list", "name=="+albdrainRef)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), r.albdrainDigest) {
		t.Errorf("containerd's %s is not the image built here (%s):\n%s", albdrainRef, r.albdrainDigest, out)
	}

	appLog := openAppLog(t, n, pod)
	watch := node.WatchProcesses(ctx, n, contract.HelperPath+"\x00sleep")
	if err := env.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, env.Client, pod)
	helpers := watch.Stop()
	if len(helpers) != 1 {
		t.Fatalf("saw %d helper processes in the pod during its deletion, want 1: %v", len(helpers), helpers)
	}
	sigterm := sigtermTime(t, appLog)
	t.Logf("helper %q started %s; SIGTERM %s", helpers[0].Cmdline, helpers[0].Start.Format(time.RFC3339Nano), sigterm.Format(time.RFC3339Nano))
	if earliest := helpers[0].Start.Add(hold - node.ClockTick); sigterm.Before(earliest) {
		t.Errorf("SIGTERM at %s, before the hold ended (helper started %s, holds %s)", sigterm.Format(time.RFC3339Nano), helpers[0].Start.Format(time.RFC3339Nano), hold)
	}
}

func waitPod(ctx context.Context, t *testing.T, c client.Client, pod *corev1.Pod, done func(*corev1.Pod) bool) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return false, err
		}
		return done(pod), nil
	})
	if err != nil {
		t.Fatalf("pod %s: %v; status: %+v", pod.Name, err, pod.Status)
	}
}

func waitGone(ctx context.Context, t *testing.T, c client.Client, pod *corev1.Pod) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("pod %s not gone: %v", pod.Name, err)
	}
}

// openAppLog opens the app's container log on the node. The kubelet
// removes the file with the pod; the open file still reads to its end.
func openAppLog(t *testing.T, n *node.Node, pod *corev1.Pod) *os.File {
	t.Helper()
	return openContainerLog(t, n, pod, "app")
}

// sigtermTime reads when the app printed sigtermLine, from the timestamp the
// runtime wrote beside it in the container log on the node.
func sigtermTime(t *testing.T, log *os.File) time.Time {
	t.Helper()
	data, err := io.ReadAll(log)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// CRI log format: TIMESTAMP STREAM TAG MESSAGE
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) == 4 && parts[3] == sigtermLine {
			ts, err := time.Parse(time.RFC3339Nano, parts[0])
			if err != nil {
				t.Fatal(err)
			}
			return ts
		}
	}
	t.Fatalf("the app never logged SIGTERM; its log:\n%s", data)
	return time.Time{}
}
