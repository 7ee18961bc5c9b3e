package prestop

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// askWatcher holds the pod through the watcher until it answers or ctx (the
// max-hold) ends. Failed attempts are retried with backoff, each on a new
// connection so the Service may pick another replica; each retry sends what
// is left of the deadline. When the watcher stays unreachable the answer is
// OutcomeFallback.
func askWatcher(ctx context.Context, env Env, opts Options) contract.HoldResponse {
	if env.WatcherURL == "" {
		return contract.HoldResponse{Outcome: contract.OutcomeFallback, Message: "no watcher URL"}
	}
	client, err := newClient(env)
	if err != nil {
		return contract.HoldResponse{Outcome: contract.OutcomeFallback, Message: err.Error()}
	}
	deadline, _ := ctx.Deadline()
	url := strings.TrimSuffix(env.WatcherURL, "/") + contract.HoldPath
	backoff := opts.RetryBackoff
	failures := 0
	for {
		start := time.Now()
		resp, retry, err := attempt(ctx, client, url, contract.HoldRequest{
			Namespace:     env.PodNamespace,
			Name:          env.PodName,
			UID:           env.PodUID,
			TimeoutMillis: time.Until(deadline).Milliseconds(),
		})
		switch {
		case ctx.Err() != nil:
			return contract.HoldResponse{Outcome: contract.OutcomeTimeout, Message: "max-hold reached"}
		case err == nil:
			return resp
		case !retry:
			return contract.HoldResponse{Outcome: contract.OutcomeFallback, Message: err.Error()}
		}
		if time.Since(start) >= opts.EstablishedAfter {
			failures, backoff = 0, opts.RetryBackoff
		}
		failures++
		opts.Log.Info("watcher attempt failed", "failures", failures, "err", err)
		if failures >= opts.MaxFailures {
			return contract.HoldResponse{Outcome: contract.OutcomeFallback, Message: "watcher unreachable: " + err.Error()}
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, opts.MaxBackoff)
	}
}

// attempt makes one request. retry reports whether another attempt may
// succeed: the connection failed or dropped, or the watcher asked for it.
func attempt(ctx context.Context, client *http.Client, url string, req contract.HoldRequest) (resp contract.HoldResponse, retry bool, err error) {
	if req.TimeoutMillis <= 0 {
		return resp, false, context.DeadlineExceeded
	}
	body, err := json.Marshal(req)
	if err != nil {
		return resp, false, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return resp, false, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hresp, err := client.Do(hreq)
	if err != nil {
		return resp, true, err
	}
	defer hresp.Body.Close()
	switch hresp.StatusCode {
	case http.StatusOK:
		if err := json.NewDecoder(hresp.Body).Decode(&resp); err != nil {
			return resp, true, fmt.Errorf("reading the watcher's answer: %w", err)
		}
		return resp, false, nil
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return resp, true, fmt.Errorf("watcher: %s: %s", hresp.Status, readSnippet(hresp.Body))
	default:
		return resp, false, fmt.Errorf("watcher refused the hold: %s: %s", hresp.Status, readSnippet(hresp.Body))
	}
}

func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 512))
	return strings.TrimSpace(string(b))
}

// newClient dials from the pod IP, when known, because the watcher grants a
// hold only to a caller whose source address is the pod's. Keep-alives are
// off so every retry opens a new connection the Service can route to a
// live replica.
func newClient(env Env) (*http.Client, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if env.PodIP.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: env.PodIP.AsSlice()}
	}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableKeepAlives:   true,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if env.WatcherCA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(env.WatcherCA)) {
			return nil, errors.New("watcher CA: no certificate in PEM")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}

// reportTimeout bounds the report of a hold's end: it is made after the
// release, on the pod's way out, and only feeds the watcher's events and
// metrics.
const reportTimeout = 2 * time.Second

// reportEnd tells the watcher how a hold it answered with
// OutcomeDeregistering ended. It is one attempt, bounded by reportTimeout;
// a failure is only logged.
func reportEnd(ctx context.Context, env Env, opts Options, end contract.HoldEnd) {
	if env.WatcherURL == "" {
		return
	}
	end.Namespace, end.Name, end.UID = env.PodNamespace, env.PodName, env.PodUID
	err := func() error {
		client, err := newClient(env)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
		defer cancel()
		body, err := json.Marshal(end)
		if err != nil {
			return err
		}
		url := strings.TrimSuffix(env.WatcherURL, "/") + contract.HoldEndPath
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("watcher: %s: %s", resp.Status, readSnippet(resp.Body))
		}
		return nil
	}()
	if err != nil {
		opts.Log.Info("could not report the end of the hold", "outcome", end.Outcome, "err", err)
	}
}
