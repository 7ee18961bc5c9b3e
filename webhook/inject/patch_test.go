package inject

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	evanphx "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	kjson "sigs.k8s.io/json"

	"github.com/albdrain/albdrain/internal/contract"
	"github.com/albdrain/albdrain/internal/lbc"
)

// FuzzPatch proves that Patch and the typed mutation agree: for fuzzed pods,
// the patch applied to the pod's JSON gives exactly the JSON of the pod the
// mutation left, on a first pass, on a second pass (which changes nothing),
// and when a reinvocation removes the hold. Where the input is a pod's JSON
// as the apiserver could send it (case-sensitive, no duplicate keys, unknown
// fields allowed), the patch is applied to the input itself too.
func FuzzPatch(f *testing.F) {
	for i, s := range applySeeds {
		f.Add([]byte(s), int32(8080), "http", i%2 == 0)
	}
	for _, s := range []string{
		`{"metadata":{"annotations":{},"labels":null},"spec":{"futureField":1,"volumes":[],"readinessGates":null,` +
			`"containers":[{"name":"app","env":[],"volumeMounts":null,"lifecycle":null,"futureContainerField":"x","ports":[{"containerPort":8080}]}]}}`,
		`{"metadata":{"annotations":{"a~b/c":"1"}},"spec":{"containers":[{"name":"app","lifecycle":{"preStop":null,"postStart":{"sleep":{"seconds":1}}},` +
			`"ports":[{"containerPort":8080}]}]}}`,
	} {
		f.Add([]byte(s), int32(8080), "", false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, portNum int32, portName string, named bool) {
		var pod corev1.Pod
		targets, ok := fuzzInput(raw, &pod, portNum, portName, named)
		if !ok {
			return
		}
		doc := canonical(t, &pod)
		exact := true
		if asSent(raw, &pod) {
			doc, exact = raw, false
		}

		applied := pod.DeepCopy()
		_, _, _ = Apply(applied, targets, testOptions())
		appliedDoc := checkPatch(t, "first pass", doc, &pod, applied, exact)

		again := applied.DeepCopy()
		_, _, _ = Apply(again, targets, testOptions())
		if ops, err := Patch(applied, again); err != nil || len(ops) != 0 {
			t.Fatalf("second pass: patch %v, %v", ops, err)
		}

		removed := applied.DeepCopy()
		Remove(removed)
		checkPatch(t, "removal after a pass", appliedDoc, applied, removed, exact)

		removed = pod.DeepCopy()
		Remove(removed)
		checkPatch(t, "removal", doc, &pod, removed, exact)
	})
}

// asSent reports whether raw is a pod's JSON as the apiserver could send it
// and decodes to pod: case-sensitive keys, none twice, metadata and spec
// present. Fields pod does not know are allowed.
func asSent(raw []byte, pod *corev1.Pod) bool {
	var strict corev1.Pod
	strictErrs, err := kjson.UnmarshalStrict(raw, &strict, kjson.DisallowDuplicateFields)
	if err != nil || len(strictErrs) != 0 || !reflect.DeepEqual(&strict, pod) {
		return false
	}
	var top struct{ Metadata, Spec map[string]json.RawMessage }
	return json.Unmarshal(raw, &top) == nil && top.Metadata != nil && top.Spec != nil
}

// checkPatch applies Patch(before, after) to doc, before's JSON, and fails
// unless the result is after's JSON: byte for byte but for key order when
// exact, else once decoded, as doc may have fields the typed pod drops. It
// returns the patched document.
func checkPatch(t *testing.T, what string, doc []byte, before, after *corev1.Pod, exact bool) []byte {
	t.Helper()
	ops, err := Patch(before, after)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	out := applyOps(t, doc, ops)
	got := out
	if !exact {
		var decoded corev1.Pod
		if err := json.Unmarshal(out, &decoded); err != nil {
			t.Fatalf("%s: patched pod does not decode: %v\n%s", what, err, out)
		}
		got = canonical(t, &decoded)
	}
	if d := cmp.Diff(jsonValue(t, canonical(t, after)), jsonValue(t, got)); d != "" {
		t.Fatalf("%s: patched JSON differs from the mutated pod's (-mutated +patched):\n%s\npatch: %s", what, d, mustJSON(t, ops))
	}
	return out
}

func applyOps(t *testing.T, doc []byte, ops []jsonpatch.Operation) []byte {
	t.Helper()
	if len(ops) == 0 {
		return doc
	}
	p, err := evanphx.DecodePatch(mustJSON(t, ops))
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("applying %s to %s: %v", mustJSON(t, ops), doc, err)
	}
	return out
}

func canonical(t *testing.T, pod *corev1.Pod) []byte {
	t.Helper()
	return mustJSON(t, pod)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonValue decodes b keeping numbers as written, so that int64 fields
// compare exactly.
func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return v
}

// TestPatch pins the operations for representative pods: each edits only
// what the mutation changed, and applied to the pod's JSON gives the
// mutated pod's.
func TestPatch(t *testing.T) {
	injected := func(p *corev1.Pod) *corev1.Pod {
		if _, ok, err := Apply(p, []lbc.Backend{tgbTarget}, testOptions()); !ok || err != nil {
			t.Fatalf("Apply = %v, %v", ok, err)
		}
		return p
	}
	own := func() *corev1.Pod {
		c := container("app", port("http", 8080))
		c.Lifecycle = &corev1.Lifecycle{PreStop: envoyDrain, PostStart: envoyDrain}
		c.Env = []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}}
		c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		p := podWith(c)
		p.Annotations = map[string]string{"team": "shop"}
		p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
		p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "x"}}
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
		p.Spec.ServiceAccountName = "default"
		return p
	}
	sidecar := func() *corev1.Pod {
		p := podWith(container("app", port("http", 8080)))
		p.Spec.InitContainers = []corev1.Container{nativeSidecar("envoy", envoyDrain)}
		return p
	}
	tests := []struct {
		name   string
		before func() *corev1.Pod
		edit   func(*corev1.Pod)
		want   []string
	}{
		{
			name:   "plain pod: whole lists and maps added",
			before: func() *corev1.Pod { return podWith(container("app", port("http", 8080))) },
			edit:   func(p *corev1.Pod) { injected(p) },
			want: []string{"add /metadata/annotations", "add /metadata/labels/albdrain.io~1managed", "add /spec/initContainers",
				"add /spec/containers/0/lifecycle", "add /spec/containers/0/env", "add /spec/containers/0/volumeMounts",
				"add /spec/volumes", "add /spec/readinessGates", "add /spec/terminationGracePeriodSeconds"},
		},
		{
			name:   "pod with its own hook, environment, mounts, volumes and gates: appended to",
			before: own,
			edit:   func(p *corev1.Pod) { injected(p) },
			want: []string{"add /metadata/annotations/albdrain.io~1injected", "add /metadata/labels/albdrain.io~1managed",
				"add /spec/initContainers", "replace /spec/containers/0/lifecycle/preStop",
				"add /spec/containers/0/env/-", "add /spec/containers/0/env/-", "add /spec/containers/0/env/-",
				"add /spec/containers/0/env/-", "add /spec/containers/0/env/-", "add /spec/containers/0/env/-",
				"add /spec/containers/0/env/-", "add /spec/containers/0/volumeMounts/-", "add /spec/containers/0/volumeMounts/-",
				"add /spec/volumes/-", "add /spec/volumes/-", "add /spec/readinessGates/-", "replace /spec/terminationGracePeriodSeconds"},
		},
		{
			name:   "native sidecar held in place, the helper appended after it",
			before: sidecar,
			edit:   func(p *corev1.Pod) { injected(p) },
			want: []string{"add /metadata/annotations", "add /metadata/labels/albdrain.io~1managed",
				"replace /spec/initContainers/0/lifecycle/preStop", "add /spec/initContainers/0/env", "add /spec/initContainers/0/volumeMounts",
				"add /spec/initContainers/-", "add /spec/containers/0/lifecycle", "add /spec/containers/0/env", "add /spec/containers/0/volumeMounts",
				"add /spec/volumes", "add /spec/readinessGates", "add /spec/terminationGracePeriodSeconds"},
		},
		{
			name:   "second pass: nothing",
			before: func() *corev1.Pod { return injected(own()) },
			edit:   func(p *corev1.Pod) { injected(p) },
		},
		{
			name:   "removal on reinvocation: the pod's own entries stay",
			before: func() *corev1.Pod { return injected(own()) },
			edit:   func(p *corev1.Pod) { Remove(p) },
			want: []string{"remove /metadata/annotations/albdrain.io~1injected", "remove /metadata/labels/albdrain.io~1managed",
				"remove /spec/initContainers", "replace /spec/containers/0/lifecycle/preStop",
				"remove /spec/containers/0/env/1", "remove /spec/containers/0/env/1", "remove /spec/containers/0/env/1",
				"remove /spec/containers/0/env/1", "remove /spec/containers/0/env/1", "remove /spec/containers/0/env/1",
				"remove /spec/containers/0/env/1", "remove /spec/containers/0/volumeMounts/1", "remove /spec/containers/0/volumeMounts/1",
				"remove /spec/volumes/1", "remove /spec/volumes/1", "replace /spec/terminationGracePeriodSeconds"},
		},
		{
			name: "removal from a sidecar pod: the helper goes from between",
			before: func() *corev1.Pod {
				p := injected(sidecar())
				// A mesh injector that ran after albdrain appended its own.
				p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "istio-init"})
				return p
			},
			edit: func(p *corev1.Pod) { Remove(p) },
			want: []string{"remove /metadata/annotations", "remove /metadata/labels/albdrain.io~1managed",
				"replace /spec/initContainers/0/lifecycle/preStop", "remove /spec/initContainers/0/env", "remove /spec/initContainers/0/volumeMounts",
				"remove /spec/initContainers/1",
				"remove /spec/containers/0/lifecycle", "remove /spec/containers/0/env", "remove /spec/containers/0/volumeMounts",
				"remove /spec/volumes", "replace /spec/terminationGracePeriodSeconds"},
		},
		{
			name: "annotation keys escaped",
			before: func() *corev1.Pod {
				p := podWith()
				p.Annotations = map[string]string{"a~b/c": "1", "gone": "x"}
				return p
			},
			edit: func(p *corev1.Pod) { p.Annotations = map[string]string{"a~b/c": "2", contract.SkippedKey: "why"} },
			want: []string{"add /metadata/annotations/albdrain.io~1skipped", "replace /metadata/annotations/a~0b~1c", "remove /metadata/annotations/gone"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.before()
			after := before.DeepCopy()
			tc.edit(after)
			ops, err := Patch(before, after)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, op := range ops {
				got = append(got, op.Operation+" "+op.Path)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("operations (-want +got):\n%s", d)
			}
			checkPatch(t, tc.name, canonical(t, before), before, after, true)
		})
	}
}

// TestPatchUncovered: a change outside the fields the mutation edits is an
// error, not a patch that silently misses it.
func TestPatchUncovered(t *testing.T) {
	tests := []struct {
		name string
		edit func(*corev1.Pod)
	}{
		{name: "pod field", edit: func(p *corev1.Pod) { p.Spec.Hostname = "x" }},
		{name: "container field", edit: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "app:2" }},
		{name: "lifecycle field", edit: func(p *corev1.Pod) { p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: envoyDrain} }},
		{name: "container added", edit: func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, container("b")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := podWith(container("app"))
			before.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{}
			after := before.DeepCopy()
			tc.edit(after)
			if ops, err := Patch(before, after); err == nil {
				t.Errorf("no error; patch %v", ops)
			}
		})
	}
}
