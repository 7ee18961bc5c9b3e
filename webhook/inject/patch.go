package inject

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// Patch is the JSON patch (RFC 6902) that turns before into after, where
// after is before as Apply or Remove left it, perhaps with annotations and
// labels of the webhook's own. It compares only the fields the mutation
// edits, so an admission review need not encode the pod twice and diff the
// two documents, and it edits lists element by element, so fields of the
// pod's JSON that this k8s.io/api version does not know survive the patch.
// A difference anywhere else is an error: the patch would miss it.
//
// Empty and absent are one in the pod's JSON (every field edited is
// omitempty), so a list or map that was empty is added whole, whichever
// the document has, and one left empty is removed whole.
func Patch(before, after *corev1.Pod) ([]jsonpatch.Operation, error) {
	var p patch
	p.stringMap("/metadata/annotations", before.Annotations, after.Annotations)
	p.stringMap("/metadata/labels", before.Labels, after.Labels)
	diffList(&p, "/spec/initContainers", before.Spec.InitContainers, after.Spec.InitContainers, sameName, p.container)
	if len(before.Spec.Containers) != len(after.Spec.Containers) {
		// The mutation never adds or drops an app container, and the
		// list is not omitempty: whole-list edits would not fit it.
		p.uncovered("/spec/containers")
	}
	for i := range min(len(before.Spec.Containers), len(after.Spec.Containers)) {
		p.container("/spec/containers/"+strconv.Itoa(i), &before.Spec.Containers[i], &after.Spec.Containers[i])
	}
	diffList(&p, "/spec/volumes", before.Spec.Volumes, after.Spec.Volumes, same, nil)
	diffList(&p, "/spec/readinessGates", before.Spec.ReadinessGates, after.Spec.ReadinessGates, same, nil)
	p.int64("/spec/terminationGracePeriodSeconds", before.Spec.TerminationGracePeriodSeconds, after.Spec.TerminationGracePeriodSeconds)
	if !sameOutside(before, after) {
		p.uncovered("the pod")
	}
	return p.ops, p.err
}

type patch struct {
	ops []jsonpatch.Operation
	err error
}

func (p *patch) add(path string, v any) {
	p.ops = append(p.ops, jsonpatch.Operation{Operation: "add", Path: path, Value: v})
}

func (p *patch) replace(path string, v any) {
	p.ops = append(p.ops, jsonpatch.Operation{Operation: "replace", Path: path, Value: v})
}

func (p *patch) remove(path string) {
	p.ops = append(p.ops, jsonpatch.Operation{Operation: "remove", Path: path})
}

func (p *patch) uncovered(what string) {
	if p.err == nil {
		p.err = fmt.Errorf("%s changed in a field the patch does not cover", what)
	}
}

// whole edits the list or map at path as one value when either side is
// empty, and reports whether it did.
func whole[T any](p *patch, path string, was, now int, after T) bool {
	switch {
	case was == 0 && now == 0:
	case was == 0:
		p.add(path, after)
	case now == 0:
		p.remove(path)
	default:
		return false
	}
	return true
}

// stringMap edits the map at path key by key, in key order.
func (p *patch) stringMap(path string, before, after map[string]string) {
	if whole(p, path, len(before), len(after), after) {
		return
	}
	var changed []string
	for k, v := range after {
		if was, ok := before[k]; !ok || was != v {
			changed = append(changed, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	for _, k := range changed {
		at := path + "/" + pointerEscaper.Replace(k)
		v, now := after[k]
		_, was := before[k]
		switch {
		case !now:
			p.remove(at)
		case was:
			p.replace(at, v)
		default:
			p.add(at, v)
		}
	}
}

// pointerEscaper escapes a map key into one JSON pointer token (RFC 6901):
// annotation keys such as albdrain.io/injected have a slash.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func (p *patch) int64(path string, before, after *int64) {
	switch {
	case after == nil && before == nil:
	case after == nil:
		p.remove(path)
	case before == nil:
		p.add(path, *after)
	case *before != *after:
		p.replace(path, *after)
	}
}

// container edits what the mutation edits in a container: its preStop (or
// its whole lifecycle), environment and volume mounts.
func (p *patch) container(path string, before, after *corev1.Container) {
	p.lifecycle(path+"/lifecycle", before.Lifecycle, after.Lifecycle)
	diffList(p, path+"/env", before.Env, after.Env, same, nil)
	diffList(p, path+"/volumeMounts", before.VolumeMounts, after.VolumeMounts, same, nil)
	b, a := *before, *after
	b.Lifecycle, a.Lifecycle = nil, nil
	b.Env, a.Env = nil, nil
	b.VolumeMounts, a.VolumeMounts = nil, nil
	if !reflect.DeepEqual(&b, &a) {
		p.uncovered(path)
	}
}

func (p *patch) lifecycle(path string, before, after *corev1.Lifecycle) {
	switch {
	case before == nil && after == nil:
		return
	case after == nil:
		p.remove(path)
		return
	case before == nil:
		p.add(path, after)
		return
	}
	if !reflect.DeepEqual(before.PreStop, after.PreStop) {
		switch {
		case after.PreStop == nil:
			p.remove(path + "/preStop")
		case before.PreStop == nil:
			p.add(path+"/preStop", after.PreStop)
		default:
			p.replace(path+"/preStop", after.PreStop)
		}
	}
	b, a := *before, *after
	b.PreStop, a.PreStop = nil, nil
	if !reflect.DeepEqual(&b, &a) {
		p.uncovered(path)
	}
}

// diffList edits the list at path into after, for a mutation that removes
// elements, appends some and edits others in place. It walks before once:
// an element that matches the next one of after stays, and elem edits it
// into that one; any other is removed; what is left of after is appended.
// The result is after whatever the two lists are, and an element kept in
// place keeps the fields of the document that the typed pod does not have.
func diffList[T any](p *patch, path string, before, after []T, match func(b, a *T) bool, elem func(path string, b, a *T)) {
	if whole(p, path, len(before), len(after), after) {
		return
	}
	j := 0
	for i := range before {
		// Elements kept so far precede before[i], the ones removed are gone.
		at := path + "/" + strconv.Itoa(j)
		if j < len(after) && match(&before[i], &after[j]) {
			if elem != nil {
				elem(at, &before[i], &after[j])
			}
			j++
			continue
		}
		p.remove(at)
	}
	for ; j < len(after); j++ {
		p.add(path+"/-", &after[j])
	}
}

func same[T any](b, a *T) bool { return reflect.DeepEqual(b, a) }

func sameName(b, a *corev1.Container) bool { return b.Name == a.Name }

// sameOutside reports whether before and after agree outside the fields
// Patch compares.
func sameOutside(before, after *corev1.Pod) bool {
	b, a := *before, *after
	for _, pod := range []*corev1.Pod{&b, &a} {
		pod.Annotations, pod.Labels = nil, nil
		pod.Spec.InitContainers, pod.Spec.Containers, pod.Spec.Volumes, pod.Spec.ReadinessGates = nil, nil, nil, nil
		pod.Spec.TerminationGracePeriodSeconds = nil
	}
	return reflect.DeepEqual(&b, &a)
}
