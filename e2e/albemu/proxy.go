package albemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is a data-plane listener forwarding to one target group, like
// an ALB listener whose default action forwards there.
type Listener struct {
	e    *Emulator
	tg   *targetGroup
	ln   net.Listener
	srv  *http.Server
	port string
	// spread counts client connections, to spread them over the nodes.
	spread atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// statusClientClosed is the status ALB logs when the client goes away
// before the response.
const statusClientClosed = 460

// discardLog silences ReverseProxy's own logging; outcomes are in the
// request log instead.
var discardLog = log.New(io.Discard, "", 0)

// AddListener starts an HTTP listener on addr ("" means 127.0.0.1:0) that
// forwards to the target group. Close the emulator or the listener to stop
// it.
func (e *Emulator) AddListener(tgARN, addr string) (*Listener, error) {
	if addr == "" {
		addr = defaultListenAddr
	}
	e.mu.Lock()
	tg, apiErr := e.groupLocked(tgARN)
	e.mu.Unlock()
	if apiErr != nil {
		return nil, apiErr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("albemu: listen: %w", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	l := &Listener{e: e, tg: tg, ln: ln, port: port}
	l.srv = &http.Server{
		Handler:           l,
		IdleTimeout:       e.opts.IdleTimeout,
		ReadHeaderTimeout: e.opts.IdleTimeout,
		ErrorLog:          discardLog,
		ConnContext:       l.assignNode,
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		_ = ln.Close()
		return nil, errors.New("albemu: emulator closed")
	}
	e.listeners[l] = struct{}{}
	e.goLocked(func() { _ = l.srv.Serve(ln) })
	return l, nil
}

// assignNode spreads client connections over the nodes in turn, as DNS
// round robin over the load balancer's addresses spreads its clients: every
// request on a connection goes through the same node.
func (l *Listener) assignNode(ctx context.Context, _ net.Conn) context.Context {
	n := int((l.spread.Add(1) - 1) % uint64(len(l.e.nodes)))
	l.e.clientConnected(l.tg, n)
	return withNode(ctx, n)
}

// URL is the listener's base URL, e.g. "http://127.0.0.1:34567".
func (l *Listener) URL() string { return "http://" + l.Addr() }

// Addr is the listener's "host:port".
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Close stops the listener and drops its connections.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.srv.Close()
		l.e.mu.Lock()
		delete(l.e.listeners, l)
		l.e.mu.Unlock()
	})
	return l.closeErr
}

// ServeHTTP routes one client request like the ALB: to a target picked from
// the data plane's routing set, with ALB's status codes for failures.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := l.e
	n := nodeOf(r.Context())
	rec := RequestRecord{
		Time: time.Now(), Listener: l.Addr(), Node: n, TargetGroupArn: l.tg.arn,
		Method: r.Method, Path: r.URL.Path,
	}
	sw := &statusWriter{ResponseWriter: w}

	e.mu.Lock()
	rt := l.tg.pickLocked(n)
	var x *exchange
	if rt != nil {
		ctx, cancel := context.WithCancelCause(r.Context())
		x = &exchange{ctx: ctx, cancel: cancel}
		rt.inflight[x] = struct{}{}
	}
	e.mu.Unlock()

	if rt == nil {
		writeALBError(sw, http.StatusServiceUnavailable)
		rec.Status, rec.Err = sw.status, "no healthy or unhealthy target in the routing set"
		rec.Duration = time.Since(rec.Time)
		e.recordRequest(rec)
		return
	}
	rec.Target = rt.target.String()

	defer func() {
		e.mu.Lock()
		delete(rt.inflight, x)
		e.mu.Unlock()
		p := recover()
		if p != nil && rec.Err == "" {
			// ReverseProxy aborts the client connection when the body copy
			// fails: the client sees a truncated response.
			rec.Err = "response cut mid-body: " + bodyCutReason(x.ctx, r.Context())
		}
		x.cancel(nil)
		if rec.Status == 0 {
			rec.Status = sw.status
		}
		rec.Duration = time.Since(rec.Time)
		e.recordRequest(rec)
		if p != nil {
			panic(p)
		}
	}()

	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: rt.target.String()})
			pr.Out.Host = pr.In.Host // the ALB keeps the client's Host
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Port", l.port)
			pr.Out.Header.Set("X-Amzn-Trace-Id", traceID(rec.Time))
		},
		Transport: e.nodes[n].transport,
		ErrorLog:  discardLog,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			status, why := classifyProxyError(x.ctx, r.Context(), err)
			rec.Err = why
			if status == statusClientClosed {
				rec.Status = status // nobody left to answer
				return
			}
			writeALBError(w, status)
		},
	}
	proxy.ServeHTTP(sw, r.WithContext(x.ctx))
}

// classifyProxyError maps a failure to reach or hear from a target to the
// status the ALB gives the client, and a reason for the request log.
func classifyProxyError(exCtx, clientCtx context.Context, err error) (int, string) {
	var op *net.OpError
	dialFailed := errors.As(err, &op) && op.Op == "dial"
	switch {
	case errors.Is(context.Cause(exCtx), errDrainCut):
		return http.StatusBadGateway, errDrainCut.Error()
	case clientCtx.Err() != nil:
		return statusClientClosed, "client closed the connection"
	case errors.Is(err, errNotLoopback):
		return http.StatusBadGateway, errNotLoopback.Error()
	case dialFailed && isTimeout(err):
		return http.StatusGatewayTimeout, "connect timeout: " + err.Error()
	case dialFailed:
		return http.StatusBadGateway, "connect failed: " + err.Error()
	case isTimeout(err):
		return http.StatusGatewayTimeout, "idle timeout waiting for the target: " + err.Error()
	default:
		return http.StatusBadGateway, "target closed or reset the connection: " + err.Error()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func bodyCutReason(exCtx, clientCtx context.Context) string {
	switch {
	case errors.Is(context.Cause(exCtx), errDrainCut):
		return errDrainCut.Error()
	case clientCtx.Err() != nil:
		return "client closed the connection"
	default:
		return "target closed the connection"
	}
}

// writeALBError answers like the ALB itself does, with its HTML page.
func writeALBError(w http.ResponseWriter, status int) {
	text := http.StatusText(status)
	switch status {
	case http.StatusServiceUnavailable:
		text = "Service Temporarily Unavailable"
	case http.StatusGatewayTimeout:
		text = "Gateway Time-out"
	}
	title := strconv.Itoa(status) + " " + text
	w.Header().Set("Server", "awselb/2.0")
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n</body>\r\n</html>\r\n", title, title)
}

// traceID is an X-Amzn-Trace-Id root in AWS's format.
func traceID(t time.Time) string {
	return fmt.Sprintf("Root=1-%08x-%s", t.Unix(), randomHex(12))
}

// statusWriter remembers the status sent to the client.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection for flushing.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
