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
	c    *Client
}

func (p peer) ID() string { return p.addr.String() }

func (p peer) Poll(ctx context.Context, tgARN string, targets []elbv2.Target, after uint64) (elbv2.SharedPoll, error) {
	return p.c.poll(ctx, p.addr, tgARN, targets, after)
}

func (c *Client) poll(ctx context.Context, addr netip.AddrPort, tgARN string, targets []elbv2.Target, after uint64) (elbv2.SharedPoll, error) {
	req := pollRequest{TargetGroupARN: tgARN, After: after, Targets: make([]wireTarget, len(targets))}
	for i, t := range targets {
		req.Targets[i] = wireTarget{ID: t.ID, Port: t.Port}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return elbv2.SharedPoll{}, err
	}
	token, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return elbv2.SharedPoll{}, fmt.Errorf("peer token: %w", err)
	}
	url := "https://" + addr.String() + Path
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return elbv2.SharedPoll{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := c.HTTP.Do(hr)
	if err != nil {
		return elbv2.SharedPoll{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return elbv2.SharedPoll{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return elbv2.SharedPoll{}, fmt.Errorf("replica %s answered %d: %s", addr, resp.StatusCode, bytes.TrimSpace(raw))
	}
	var out pollResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return elbv2.SharedPoll{}, fmt.Errorf("replica %s: %w", addr, err)
	}
	return fromWire(out), nil
}
