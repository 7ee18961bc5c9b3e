package inject

import (
	"encoding/json"
	"slices"

	"github.com/albdrain/albdrain/internal/contract"
)

func marshalRecord(r contract.Record) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func newRecord(ov overrides, plan holdPlan) contract.Record {
	r := contract.Record{
		Mode:           string(ov.mode),
		MaxHoldSeconds: int64(ov.maxHold.Seconds()),
		Containers:     plan.containers,
		Ports:          plan.ports,
	}
	for _, t := range plan.matched {
		r.Services = appendNew(r.Services, t.Service)
		if t.TargetGroupBinding != "" {
			r.TargetGroupBindings = appendNew(r.TargetGroupBindings, t.TargetGroupBinding)
		}
		if t.Ingress != "" {
			r.Ingresses = appendNew(r.Ingresses, t.Ingress)
		}
		if t.Route != "" {
			r.Routes = appendNew(r.Routes, t.Route)
			r.Gateways = appendNew(r.Gateways, t.Gateway)
		}
		if t.Kind != "" {
			r.LoadBalancers = appendNew(r.LoadBalancers, string(t.Kind))
		}
	}
	slices.Sort(r.LoadBalancers)
	return r
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
