package inject

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/albdrain/albdrain/internal/lbc"
)

// holdPlan is which containers hold and on which port numbers the pod serves.
type holdPlan struct {
	containers []string
	ports      []int32
	// matched lists the backends some port of the pod really serves.
	matched []lbc.Backend
}

// planHolds finds the containers serving the backends. A port that no
// container declares, or that a native sidecar serves, holds every app
// container: the sidecar outlives them, and the hold must keep the app
// serving behind it.
func planHolds(spec *corev1.PodSpec, backends []lbc.Backend) holdPlan {
	var p holdPlan
	holdAll := false
	add := func(name string) {
		if !slices.Contains(p.containers, name) {
			p.containers = append(p.containers, name)
		}
	}
	for _, b := range backends {
		served := lbc.ServingPorts(spec, b.TargetPort)
		for _, sp := range served {
			if !slices.Contains(p.ports, sp.Port) {
				p.ports = append(p.ports, sp.Port)
			}
			if sp.Container == "" || sp.Sidecar {
				holdAll = true
			} else {
				add(sp.Container)
			}
		}
		if len(served) > 0 {
			p.matched = append(p.matched, b)
		}
	}
	if holdAll {
		for _, c := range spec.Containers {
			add(c.Name)
		}
	}
	slices.Sort(p.ports)
	return p
}
