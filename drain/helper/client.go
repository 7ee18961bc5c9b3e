package helper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// askWatcher holds the pod through the watcher until it answers or ctx (the
// max-hold) ends. Failed attempts are retried with backoff, each on a new
// connection so the Service may pick another replica; each retry sends what
// is left of the deadline and the token and CA bundle as the kubelet last
// wrote them. When the watcher stays unreachable, or refuses the pod (a
// token it does not accept included), the answer is OutcomeFallback; when
// it says the pod is not going away, OutcomeNotTerminating.
//
// An attempt that fails counts towards MaxFailures unless the watcher had
// the request and held it for EstablishedAfter (a replica lost mid-hold).
// A dial or TLS handshake that times out (packets dropped by a
// NetworkPolicy, a security group, cluster DNS down) counts, so the
// fallback comes after at most MaxFailures attempts of 2 × AttemptTimeout
// each plus the backoffs between them: 6 × 10 s + 5 s = 65 s with the
// defaults, 35 s when only the dial times out.
func askWatcher(ctx context.Context, env Env, budget time.Duration, opts Options) contract.Answer {
	if env.WatcherURL == "" {
		return contract.NewFinal(contract.OutcomeFallback, "no watcher URL", contract.Wait{})
	}
	deadline, _ := ctx.Deadline()
	url := strings.TrimSuffix(env.WatcherURL, "/") + contract.HoldPath
	backoff := opts.RetryBackoff
	failures := 0
	var untrustedSince time.Time
	for {
		start := time.Now()
		resp, retry, sent, err := attempt(ctx, env, url, contract.HoldRequest{
			Namespace:     env.PodNamespace,
			Name:          env.PodName,
			UID:           env.PodUID,
			TimeoutMillis: time.Until(deadline).Milliseconds(),
			BudgetMillis:  budget.Milliseconds(),
		}, opts)
		switch {
		case ctx.Err() != nil:
			return contract.NewFinal(contract.OutcomeTimeout, "max-hold reached", contract.Wait{})
		case err == nil:
			return resp
		case errors.Is(err, errNotTerminating):
			return contract.NewFinal(contract.OutcomeNotTerminating, err.Error(), contract.Wait{})
		case !retry:
			return contract.NewFinal(contract.OutcomeFallback, err.Error(), contract.Wait{})
		}
		if sent && time.Since(start) >= opts.EstablishedAfter {
			failures, backoff = 0, opts.RetryBackoff
		}
		// An untrusted certificate is most likely a CA changed since the
		// kubelet last renewed the pod's bundle: wait for the renewal, for
		// CAWait at most, rather than fall back.
		if untrusted(err) {
			if untrustedSince.IsZero() {
				untrustedSince = start
			}
			if time.Since(untrustedSince) < opts.CAWait {
				opts.Log.Info("watcher's certificate not trusted yet; waiting for the kubelet to renew the CA bundle", "err", err)
				sleep(ctx, backoff)
				backoff = min(2*backoff, opts.MaxBackoff)
				continue
			}
		}
		failures++
		opts.Log.Info("watcher attempt failed", "failures", failures, "err", err)
		if failures >= opts.MaxFailures {
			return contract.NewFinal(contract.OutcomeFallback, "watcher unreachable: "+err.Error(), contract.Wait{})
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, opts.MaxBackoff)
	}
}

// errNotTerminating is the watcher's 409: the pod is not going away.
var errNotTerminating = errors.New("the pod is not going away")

// attempt makes one request. retry reports whether another attempt may
// succeed: the connection failed or dropped, or the watcher asked for it;
// sent whether the request reached the watcher in full, which a dial or
// handshake that timed out never does.
func attempt(ctx context.Context, env Env, url string, req contract.HoldRequest, opts Options) (resp contract.Answer, retry, sent bool, err error) {
	if req.TimeoutMillis <= 0 {
		return resp, false, false, context.DeadlineExceeded
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		wrote.Store(i.Err == nil)
	}})
	hresp, err := post(ctx, env, url, req, opts.AttemptTimeout)
	if err != nil {
		return resp, !errors.Is(err, errSetup), wrote.Load(), err
	}
	defer hresp.Body.Close()
	switch hresp.StatusCode {
	case http.StatusOK:
		if err := json.NewDecoder(hresp.Body).Decode(&resp); err != nil {
			return resp, true, true, fmt.Errorf("reading the watcher's answer: %w", err)
		}
		return resp, false, true, nil
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return resp, true, true, fmt.Errorf("watcher: %s: %s", hresp.Status, readSnippet(hresp.Body))
	default:
		body := readSnippet(hresp.Body)
		if hresp.StatusCode == http.StatusConflict && strings.HasPrefix(body, contract.NotTerminatingMessage) {
			return resp, false, true, fmt.Errorf("%w: %s", errNotTerminating, body)
		}
		return resp, false, true, fmt.Errorf("watcher refused the hold: %s: %s", hresp.Status, body)
	}
}

func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 512))
	return strings.TrimSpace(string(b))
}

// errSetup marks a request the helper could not even make: its CA bundle
// or token is unreadable. Retrying would not help.
var errSetup = errors.New("helper setup")

// post sends v as JSON to url with the pod's token, on a client that
// trusts the CA bundle as it is now.
func post(ctx context.Context, env Env, url string, v any, timeout time.Duration) (*http.Response, error) {
	client, err := newClient(env, timeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSetup, err)
	}
	tok, err := token(env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSetup, err)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSetup, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSetup, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return client.Do(req)
}

// reportTimeout bounds the report of a hold's end, its retries included:
// it is made after the release, on the pod's way out, and only feeds the
// watcher's events and metrics, but a watcher slow to check the caller (a
// TokenReview on a loaded apiserver) or a replica gone since the answer
// must not lose it.
const reportTimeout = 5 * time.Second

// reportEnd tells the watcher how a hold it handed over (contract.Handoff)
// ended, retrying a failed attempt (on a new
// connection, maybe to another replica) within reportTimeout; a report
// that never arrives is only logged, and the watcher counts it unreported.
func reportEnd(ctx context.Context, env Env, opts Options, end contract.HoldEnd) {
	if env.WatcherURL == "" {
		return
	}
	end.Namespace, end.Name, end.UID = env.PodNamespace, env.PodName, env.PodUID
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	backoff := opts.RetryBackoff
	for {
		retry, err := reportOnce(ctx, env, opts, end)
		if err == nil {
			return
		}
		if !retry || ctx.Err() != nil {
			opts.Log.Info("could not report the end of the hold", "outcome", end.Outcome, "err", err)
			return
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, opts.MaxBackoff)
	}
}

// reportOnce makes one attempt at reporting end; retry says whether another
// may succeed.
func reportOnce(ctx context.Context, env Env, opts Options, end contract.HoldEnd) (retry bool, err error) {
	resp, err := post(ctx, env, strings.TrimSuffix(env.WatcherURL, "/")+contract.HoldEndPath, end, opts.AttemptTimeout)
	if err != nil {
		return !errors.Is(err, errSetup), err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return false, nil
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true, fmt.Errorf("watcher: %s: %s", resp.Status, readSnippet(resp.Body))
	default:
		return false, fmt.Errorf("watcher: %s: %s", resp.Status, readSnippet(resp.Body))
	}
}
