package lbcreact

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Call is one Register or DeregisterTargets call as it reached the
// emulator.
type Call struct {
	At        time.Time
	Action    string
	Targets   []string
	UserAgent string
}

// recorder stands between a controller and the emulator and notes when
// each target call arrives and which targets it names. The emulator's own
// call log keeps no targets, and a proxy times both controllers the same
// way whatever client they use.
type recorder struct {
	proxy *httputil.ReverseProxy
	srv   *http.Server
	ln    net.Listener

	mu      sync.Mutex
	calls   []Call
	changed chan struct{}
}

// startRecorder serves a recording proxy to the emulator at target on a
// loopback port.
func startRecorder(target string) (*recorder, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &recorder{proxy: httputil.NewSingleHostReverseProxy(u), ln: ln, changed: make(chan struct{})}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL is the proxy's endpoint, for a controller's ELBv2 and EC2 clients.
func (r *recorder) URL() string { return "http://" + r.ln.Addr().String() }

func (r *recorder) Close() error { return r.srv.Close() }

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	if form, err := url.ParseQuery(string(body)); err == nil {
		if a := form.Get("Action"); a == "RegisterTargets" || a == "DeregisterTargets" {
			r.record(Call{At: at, Action: a, Targets: targetIDs(form), UserAgent: req.UserAgent()})
		}
	}
	r.proxy.ServeHTTP(w, req)
}

// targetIDs reads Targets.member.N.Id from an ELBv2 Query form.
func targetIDs(form url.Values) []string {
	var ids []string
	for i := 1; ; i++ {
		id := form.Get("Targets.member." + strconv.Itoa(i) + ".Id")
		if id == "" {
			return ids
		}
		ids = append(ids, id)
	}
}

func (r *recorder) record(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	close(r.changed)
	r.changed = make(chan struct{})
}

// Calls returns the calls recorded so far.
func (r *recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// wait returns the arrival of the first action call naming target at or
// after since.
func (r *recorder) wait(ctx context.Context, action, target string, since time.Time) (time.Time, error) {
	for {
		r.mu.Lock()
		for _, c := range r.calls {
			if c.Action == action && !c.At.Before(since) && slices.Contains(c.Targets, target) {
				r.mu.Unlock()
				return c.At, nil
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}
