package prestop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

// askWatcher holds the pod through the watcher until it answers or ctx (the
// max-hold) ends. Failed attempts are retried with backoff, each on a new
// connection so the Service may pick another replica; each retry sends what
// is left of the deadline and the token and CA bundle as the kubelet last
// wrote them. When the watcher stays unreachable, or refuses the pod (a
// token it does not accept included), the answer is OutcomeFallback.
func askWatcher(ctx context.Context, env Env, opts Options) contract.HoldResponse {
	if env.WatcherURL == "" {
		return contract.HoldResponse{Outcome: contract.OutcomeFallback, Message: "no watcher URL"}
	}
	deadline, _ := ctx.Deadline()
	url := strings.TrimSuffix(env.WatcherURL, "/") + contract.HoldPath
	backoff := opts.RetryBackoff
	failures := 0
	var untrustedSince time.Time
	for {
		start := time.Now()
		resp, retry, err := attempt(ctx, env, url, contract.HoldRequest{
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
			return contract.HoldResponse{Outcome: contract.OutcomeFallback, Message: "watcher unreachable: " + err.Error()}
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, opts.MaxBackoff)
	}
}

// attempt makes one request. retry reports whether another attempt may
// succeed: the connection failed or dropped, or the watcher asked for it.
func attempt(ctx context.Context, env Env, url string, req contract.HoldRequest) (resp contract.HoldResponse, retry bool, err error) {
	if req.TimeoutMillis <= 0 {
		return resp, false, context.DeadlineExceeded
	}
	hresp, err := post(ctx, env, url, req)
	if err != nil {
		return resp, !errors.Is(err, errSetup), err
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

// errSetup marks a request the helper could not even make: its CA bundle
// or token is unreadable. Retrying would not help.
var errSetup = errors.New("helper setup")

// post sends v as JSON to url with the pod's token, on a client that
// trusts the CA bundle as it is now.
func post(ctx context.Context, env Env, url string, v any) (*http.Response, error) {
	client, err := newClient(env)
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
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
		defer cancel()
		resp, err := post(ctx, env, strings.TrimSuffix(env.WatcherURL, "/")+contract.HoldEndPath, end)
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
