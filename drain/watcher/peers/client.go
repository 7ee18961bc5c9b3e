package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
)

// maxResponseBytes bounds a peer's answer: maxTargets reports of a few
// hundred bytes each.
const maxResponseBytes = 1 << 20

// Client sends one replica's poll requests to another.
type Client struct {
	// HTTP reaches the replicas; its TLS configuration verifies them with
	// albdrain's CA and the hold Service's name.
	HTTP *http.Client
	// TokenFile holds this replica's token for albdrain's audience, read
	// on every request because the kubelet rotates it.
	TokenFile string
}

type peer struct {
	addr netip.AddrPort
	// self is the asking replica's own peer address.
	self netip.AddrPort
	c    *Client
}

func (p peer) ID() string { return p.addr.String() }

func (p peer) Poll(ctx context.Context, tgARN string, targets []elbv2.Target, after uint64) (elbv2.SharedPoll, error) {
	var out pollResponse
	if err := p.c.do(ctx, p.addr, p.request(tgARN, targets, after, false), &out); err != nil {
		return elbv2.SharedPoll{}, err
	}
	return fromWire(out), nil
}

func (p peer) Release(ctx context.Context, tgARN string, targets []elbv2.Target) error {
	return p.c.do(ctx, p.addr, p.request(tgARN, targets, 0, true), nil)
}

func (p peer) request(tgARN string, targets []elbv2.Target, after uint64, release bool) pollRequest {
	req := pollRequest{Reader: p.self.String(), TargetGroupARN: tgARN, After: after, Release: release, Targets: make([]wireTarget, len(targets))}
	for i, t := range targets {
		req.Targets[i] = wireTarget{ID: t.ID, Port: t.Port}
	}
	return req
}

// do sends req to the replica at addr and decodes its answer into out,
// unless out is nil.
func (c *Client) do(ctx context.Context, addr netip.AddrPort, req pollRequest, out *pollResponse) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	token, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return fmt.Errorf("peer token: %w", err)
	}
	url := "https://" + addr.String() + Path
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := c.HTTP.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("replica %s answered %d: %s", addr, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("replica %s: %w", addr, err)
	}
	return nil
}
