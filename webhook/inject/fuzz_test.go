package inject

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// applySeeds are pods to start fuzzing the mutation from, shared by
// FuzzApply and FuzzPatch.
var applySeeds = []string{
	`{"spec":{"containers":[{"name":"app","ports":[{"containerPort":8080}]}]}}`,
	`{"metadata":{"annotations":{"albdrain.io/mode":"sleep"}},"spec":{"containers":[{"name":"a","lifecycle":{"preStop":{"sleep":{"seconds":5}}}}]}}`,
	`{"spec":{"initContainers":[{"name":"proxy","restartPolicy":"Always","ports":[{"name":"http","containerPort":80}]}],"containers":[{"name":"a"}]}}`,
	`{"spec":{"terminationGracePeriodSeconds":0,"containers":[{"name":"a","ports":[{"name":"http","containerPort":8080}],"lifecycle":{"preStop":{"httpGet":{"port":"http"}}}}]}}`,
	`{"spec":{"terminationGracePeriodSeconds":99999,"volumes":[{"name":"albdrain-bin"}],"containers":[{"name":"a","env":[{"name":"ALBDRAIN_POD_IP","value":"x"}]}]}}`,
	`{"metadata":{"annotations":{"albdrain.io/injected":"{not json"}},"spec":{"containers":[{"name":"a","lifecycle":{"preStop":{"exec":{"command":["/opt/albdrain/albdrain-hold","wait"]}}}}]}}`,
	`{"spec":{"hostNetwork":true,"containers":[]}}`,
	`{"spec":{"initContainers":[{"name":"envoy","restartPolicy":"Always","lifecycle":{"preStop":{"exec":{"command":["/drain"]}}}}],"containers":[{"name":"a","ports":[{"containerPort":8080}]}]}}`,
	`{"metadata":{"annotations":{"albdrain.io/injected":"{\"mode\":\"sleep\",\"maxHoldSeconds\":30,\"containers\":[\"a\"],\"sidecars\":[\"s\"]}"}},` +
		`"spec":{"initContainers":[{"name":"s","restartPolicy":"Always","lifecycle":{"preStop":{"sleep":{"seconds":3}}}}],"containers":[{"name":"a","lifecycle":{"preStop":{"exec":{"command":["/x"]}}}}]}}`,
}

// FuzzApply feeds arbitrary pods and target ports to the mutation: it must
// not panic, must be idempotent, must never lower the grace period, and must
// leave names unique so the apiserver still accepts the pod.
func FuzzApply(f *testing.F) {
	for i, s := range applySeeds {
		f.Add([]byte(s), int32(8080), "http", i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, raw []byte, portNum int32, portName string, named bool) {
		var pod corev1.Pod
		targets, ok := fuzzInput(raw, &pod, portNum, portName, named)
		if !ok {
			return
		}
		before := pod.DeepCopy()
		_, injected, err := Apply(&pod, targets, testOptions())
		if err != nil || !injected {
			if d := cmp.Diff(before, &pod); d != "" {
				t.Fatalf("pod changed without an injection (err %v):\n%s", err, d)
			}
			return
		}
		if g := pod.Spec.TerminationGracePeriodSeconds; before.Spec.TerminationGracePeriodSeconds != nil && (g == nil || *g < *before.Spec.TerminationGracePeriodSeconds) {
			t.Fatalf("grace period lowered from %d to %v", *before.Spec.TerminationGracePeriodSeconds, g)
		}
		checkNoneAdded(t, contract.InitContainerName, namesOf(before.Spec.InitContainers), namesOf(pod.Spec.InitContainers))
		checkNoneAdded(t, contract.VolumeName, volumeNames(before.Spec.Volumes), volumeNames(pod.Spec.Volumes))
		for i, c := range pod.Spec.Containers {
			for _, e := range []string{contract.EnvPodName, contract.EnvPodIP, contract.EnvWatcherURL} {
				checkNoneAdded(t, e, envNames(before.Spec.Containers[i].Env), envNames(c.Env))
			}
		}
		again := pod.DeepCopy()
		if _, _, err := Apply(again, targets, testOptions()); err != nil {
			t.Fatalf("second pass: %v", err)
		}
		if d := cmp.Diff(&pod, again); d != "" {
			t.Fatalf("second pass changed the pod:\n%s", d)
		}
	})
}

// fuzzInput decodes a fuzzed pod into pod and the backend it is behind, the
// target port by number or by name; ok is false when raw is no pod.
func fuzzInput(raw []byte, pod *corev1.Pod, portNum int32, portName string, named bool) (targets []lbc.Backend, ok bool) {
	if json.Unmarshal(raw, pod) != nil {
		return nil, false
	}
	tp := intstr.FromInt32(portNum)
	if named {
		tp = intstr.FromString(portName)
	}
	return []lbc.Backend{{Service: "web", TargetPort: tp, TargetGroupBinding: "tgb"}}, true
}

// checkNoneAdded fails when the mutation made a name of albdrain's appear
// twice: the apiserver rejects duplicate container, volume and env names.
func checkNoneAdded(t *testing.T, name string, before, after []string) {
	t.Helper()
	if n, was := count(after, name), count(before, name); n > max(1, was) {
		t.Fatalf("%q appears %d times after mutation, %d before", name, n, was)
	}
}

func count(names []string, name string) int {
	n := 0
	for _, v := range names {
		if v == name {
			n++
		}
	}
	return n
}

func namesOf(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func volumeNames(vs []corev1.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func envNames(es []corev1.EnvVar) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}
