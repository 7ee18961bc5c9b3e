package prestop

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/albdrain/albdrain/drain/procnet"
)

// connWatch samples the pod's socket tables from the start of the hold and
// remembers when it last saw a new connection to a served port, so the quiet
// period can already be over when the watcher releases the pod.
//
// A new connection is a 4-tuple on a served port that the previous sample
// did not have. A connection opened and closed between two samples is
// missed unless the pod closed it first (it then lingers in TIME_WAIT);
// load balancers keep connections open, so in practice new traffic shows.
type connWatch struct {
	mu      sync.Mutex
	lastNew time.Time
	// blind is set when there is nothing to observe: no served ports, or
	// socket tables that cannot be read.
	blind bool
	ready chan struct{} // closed after the first sample
}

type fourTuple struct{ local, remote netip.AddrPort }

func watchConns(ctx context.Context, opts Options, podIP netip.Addr, ports []int32) *connWatch {
	w := &connWatch{lastNew: time.Now(), ready: make(chan struct{})}
	if len(ports) == 0 {
		w.blind = true
		close(w.ready)
		return w
	}
	go func() {
		prev, err := sample(opts.ProcRoot, podIP, ports)
		w.mu.Lock()
		w.blind = err != nil
		w.mu.Unlock()
		close(w.ready)
		if err != nil {
			opts.Log.Info("cannot read the socket tables; skipping the quiet period", "err", err)
			return
		}
		t := time.NewTicker(opts.SampleInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cur, err := sample(opts.ProcRoot, podIP, ports)
			if err != nil {
				continue // a transient read error; the next sample decides
			}
			for k := range cur {
				if _, ok := prev[k]; !ok {
					w.mu.Lock()
					w.lastNew = time.Now()
					w.mu.Unlock()
					break
				}
			}
			prev = cur
		}
	}()
	return w
}

// sample returns the connections to podIP (any address if unset) on ports.
func sample(procRoot string, podIP netip.Addr, ports []int32) (map[fourTuple]struct{}, error) {
	conns, err := procnet.Read(procRoot)
	if err != nil {
		return nil, err
	}
	out := map[fourTuple]struct{}{}
	for _, c := range conns {
		if c.State == procnet.StateListen || !slices.Contains(ports, int32(c.Local.Port())) {
			continue
		}
		if podIP.IsValid() && c.Local.Addr() != podIP {
			continue
		}
		out[fourTuple{c.Local, c.Remote}] = struct{}{}
	}
	return out, nil
}

// waitQuiet returns once no new connection has been seen for d (true), or
// when ctx ends first (false). Without ports or readable socket tables
// there is nothing to observe and it returns true at once.
func (w *connWatch) waitQuiet(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-w.ready:
	case <-ctx.Done():
		return false
	}
	for {
		w.mu.Lock()
		lastNew, blind := w.lastNew, w.blind
		w.mu.Unlock()
		if blind {
			return true
		}
		left := time.Until(lastNew.Add(d))
		if left <= 0 {
			return true
		}
		t := time.NewTimer(left)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}
