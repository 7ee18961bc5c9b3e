// Package peers carries the shared polling of target groups between the
// watcher's replicas (see drain/watcher/elbv2's Poller.Share): which
// replica polls each group (Ring), the request one replica sends another
// for a group's answers (Client), and the handler that serves it (Handler).
//
// Replicas call each other by pod IP on the hold port, over TLS verified
// with albdrain's CA, and present a token of albdrain's audience bound to
// their pod; the handler serves only callers with its own ServiceAccount.
package peers

import (
	"errors"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
)

// Path is where a replica serves other replicas' polls.
const Path = "/v1/peers/poll"

// maxTargets bounds one request: DescribeTargetHealth names at most this
// many targets per group poll in any realistic rollout, and a bound keeps
// a bad request from growing a group's polls without limit.
const maxTargets = 1000

type pollRequest struct {
	// Reader is the asking replica's peer address, which its release
	// names again.
	Reader         string       `json:"reader"`
	TargetGroupARN string       `json:"targetGroupARN"`
	Targets        []wireTarget `json:"targets"`
	After          uint64       `json:"after"`
	// Release drops the reader's asks about Targets instead: its holds on
	// them ended.
	Release bool `json:"release,omitempty"`
}

type wireTarget struct {
	ID   string `json:"id"`
	Port int32  `json:"port"`
}

type pollResponse struct {
	Generation uint64       `json:"generation"`
	Reports    []wireReport `json:"reports"`
}

type wireReport struct {
	wireTarget
	State     string `json:"state,omitempty"`
	Reason    string `json:"reason,omitempty"`
	GroupGone bool   `json:"groupGone,omitempty"`
	// Error is the owner's failed poll, which the reader's holds count as a
	// failed poll of their own.
	Error string `json:"error,omitempty"`
}

func toWire(p elbv2.SharedPoll) pollResponse {
	out := pollResponse{Generation: p.Generation, Reports: make([]wireReport, 0, len(p.Reports))}
	for t, r := range p.Reports {
		w := wireReport{wireTarget: wireTarget{ID: t.ID, Port: t.Port}, State: r.State, Reason: r.Reason, GroupGone: r.GroupGone}
		if r.Err != nil {
			w.Error = r.Err.Error()
		}
		out.Reports = append(out.Reports, w)
	}
	return out
}

func fromWire(w pollResponse) elbv2.SharedPoll {
	out := elbv2.SharedPoll{Generation: w.Generation, Reports: make(map[elbv2.Target]elbv2.Report, len(w.Reports))}
	for _, r := range w.Reports {
		rep := elbv2.Report{State: r.State, Reason: r.Reason, GroupGone: r.GroupGone}
		if r.Error != "" {
			rep = elbv2.Report{Err: errors.New(r.Error)}
		}
		out.Reports[elbv2.Target{ID: r.ID, Port: r.Port}] = rep
	}
	return out
}
