package kubelet

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/albdrain/albdrain/e2e/kubetest"
)

const gate = "target-health.elbv2.k8s.aws/web"

func startKubelet(t *testing.T, executables map[string]string) (*kubetest.Env, *Kubelet) {
	t.Helper()
	env := kubetest.Start(t)
	k, err := Start(context.Background(), env.Config, Options{Executables: executables})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	return env, k
}

func waitFor(t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func getPod(t *testing.T, env *kubetest.Env, name string) *corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: "default", Name: name}, &pod); err != nil {
		t.Fatal(err)
	}
	return &pod
}

func podReady(pod *corev1.Pod) bool {
	c := condition(pod, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func get(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestPodLifecycle(t *testing.T) {
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	if err := syscall.Mkfifo(release, 0o600); err != nil {
		t.Fatal(err)
	}
	env, k := startKubelet(t, map[string]string{"/bin/sh": "/bin/sh"})
	ctx := context.Background()

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](20),
			ReadinessGates:                []corev1.PodReadinessGate{{ConditionType: gate}},
			Containers: []corev1.Container{{
				Name: "app", Image: "app:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env: []corev1.EnvVar{
					{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
				},
				// The hook reports its environment, then holds until the test
				// releases it, so the test can look at the pod mid-hold.
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{
					"/bin/sh", "-c", `echo "ip=$POD_IP name=$POD_NAME app=$APP"; touch ` + started + `; read go < ` + release,
				}}}},
			}},
		},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}

	waitFor(t, "pod bound and running with an IP", func(context.Context) (bool, error) {
		p := getPod(t, env, "web")
		return p.Spec.NodeName == k.NodeName() && p.Status.PodIP != "", nil
	})
	p := getPod(t, env, "web")
	ip := p.Status.PodIP
	if !strings.HasPrefix(ip, "127.") || ip == "127.0.0.1" {
		t.Fatalf("pod IP %s: want a loopback address of its own", ip)
	}
	if podReady(p) {
		t.Fatal("pod Ready while its readiness gate has no condition")
	}
	url := "http://" + ip + ":8080/"
	if body, err := get(url); err != nil || strings.TrimSpace(body) != "web" {
		t.Fatalf("GET %s = %q, %v", url, body, err)
	}

	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: gate, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
	if err := env.Client.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Ready once the gate is True", func(context.Context) (bool, error) { return podReady(getPod(t, env, "web")), nil })

	if err := env.Client.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the preStop hook to start", func(context.Context) (bool, error) {
		_, err := os.Stat(started)
		return err == nil, nil
	})
	if _, err := get(url); err != nil {
		t.Fatalf("pod stopped serving during its preStop hook: %v", err)
	}
	if err := os.WriteFile(release, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod to be removed", func(ctx context.Context) (bool, error) {
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: "default", Name: "web"}, &corev1.Pod{})
		return apierrors.IsNotFound(err), nil
	})
	if _, err := get(url); err == nil {
		t.Fatal("pod still serves after removal")
	}

	terms := k.Terminations()
	if len(terms) != 1 || len(terms[0].Hooks) != 1 {
		t.Fatalf("terminations = %+v", terms)
	}
	h := terms[0].Hooks[0]
	if want := "ip=" + ip + " name=web app=web"; h.Err != "" || !strings.Contains(h.Output, want) {
		t.Errorf("hook = %+v, want output %q", h, want)
	}
	if terms[0].Killed || terms[0].Grace != 20*time.Second {
		t.Errorf("termination = %+v", terms[0])
	}
}

func TestPreStopActions(t *testing.T) {
	env, k := startKubelet(t, nil)
	ctx := context.Background()
	hooks := map[string]*corev1.LifecycleHandler{
		"sleeper": {Sleep: &corev1.SleepAction{Seconds: 1}},
		"broken":  {Exec: &corev1.ExecAction{Command: []string{"/opt/missing"}}},
		// The pod's own server answers; the hook runs before it stops.
		"getter": {HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
	}
	for name, h := range hooks {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Lifecycle: &corev1.Lifecycle{PreStop: h},
			}}},
		}
		if err := env.Client.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		waitFor(t, name+" running", func(context.Context) (bool, error) { return podReady(getPod(t, env, name)), nil })
		if err := env.Client.Delete(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every pod removed", func(context.Context) (bool, error) { return len(k.Terminations()) == len(hooks), nil })
	for _, term := range k.Terminations() {
		h := term.Hooks[0]
		switch term.Name {
		case "sleeper":
			// sleepHook fails when the sleep is cut short.
			if h.Action != ActionSleep || h.Err != "" {
				t.Errorf("sleep hook = %+v", h)
			}
		case "broken":
			if h.Action != ActionExec || !strings.Contains(h.Err, "no such file") {
				t.Errorf("exec hook of a missing file = %+v", h)
			}
		case "getter":
			if h.Action != ActionHTTPGet || h.Err != "" {
				t.Errorf("httpGet hook = %+v", h)
			}
		}
	}
}
