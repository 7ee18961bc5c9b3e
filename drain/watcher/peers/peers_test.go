package peers

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/prometheus/client_golang/prometheus/testutil"
	authnv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/internal/contract"
)

// reviews stands in for the apiserver's TokenReview: tokens map to users.
type reviews struct {
	client.Writer
	users map[string]string
	calls atomic.Int64
}

func (r *reviews) Create(_ context.Context, obj client.Object, _ ...client.CreateOption) error {
	r.calls.Add(1)
	tr := obj.(*authnv1.TokenReview)
	if u, ok := r.users[tr.Spec.Token]; ok {
		tr.Status = authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{contract.TokenAudience}, User: authnv1.UserInfo{Username: u}}
	}
	return nil
}

type draining struct{ calls atomic.Int64 }

func (d *draining) DescribeTargetHealth(_ context.Context, in *awselbv2.DescribeTargetHealthInput, _ ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetHealthOutput, error) {
	d.calls.Add(1)
	out := &awselbv2.DescribeTargetHealthOutput{}
	for _, t := range in.Targets {
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, types.TargetHealthDescription{
			Target:       &types.TargetDescription{Id: t.Id, Port: t.Port},
			TargetHealth: &types.TargetHealth{State: types.TargetHealthStateEnumDraining},
		})
	}
	return out, nil
}

const self = "system:serviceaccount:albdrain:albdrain"

func tokenFile(t *testing.T, token string) string {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// owner serves a real poller over TLS, as a replica does.
func owner(t *testing.T, rv *reviews) (*httptest.Server, *draining) {
	api := &draining{}
	p := elbv2.NewPoller(api, 10*time.Millisecond, metrics.New())
	h := &Handler{Poller: p, Reviews: rv, TokenFile: tokenFile(t, "owner-token"), Wait: 10 * time.Second}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv, api
}

func clientOf(t *testing.T, srv *httptest.Server, token string) (*Client, netip.AddrPort) {
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &Client{HTTP: srv.Client(), TokenFile: tokenFile(t, token)}, netip.MustParseAddrPort(u.Host)
}

func TestReplicaReadsTheOwnersPoll(t *testing.T) {
	rv := &reviews{users: map[string]string{"owner-token": self, "reader-token": self}}
	srv, ownerAPI := owner(t, rv)
	c, addr := clientOf(t, srv, "reader-token")

	readerAPI := &draining{}
	reader := elbv2.NewPoller(readerAPI, 10*time.Millisecond, metrics.New())
	reader.Share(fixedOwner{peer: asker(c, addr)}, elbv2.DefaultCallTimeout)
	reports, stop := reader.Subscribe("arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/1", elbv2.Target{ID: "10.0.0.9", Port: 8080})
	defer stop()
	for range 3 {
		select {
		case r := <-reports:
			if r.Err != nil || r.State != string(types.TargetHealthStateEnumDraining) {
				t.Fatalf("report %+v, want draining", r)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no report through the owner")
		}
	}
	if n := readerAPI.calls.Load(); n != 0 {
		t.Errorf("the reader called ELBv2 %d times, want 0", n)
	}
	if ownerAPI.calls.Load() == 0 {
		t.Error("the owner never polled")
	}
	// Two identities reviewed once each, however many requests: the
	// owner's own and the reader's.
	if n := rv.calls.Load(); n != 2 {
		t.Errorf("%d TokenReviews, want 2 (each token once)", n)
	}
}

func TestStrangersAreRefused(t *testing.T) {
	rv := &reviews{users: map[string]string{"owner-token": self, "pod-token": "system:serviceaccount:shop:web"}}
	srv, ownerAPI := owner(t, rv)
	for _, token := range []string{"pod-token", "garbage"} {
		c, addr := clientOf(t, srv, token)
		_, err := asker(c, addr).Poll(context.Background(), "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/1", []elbv2.Target{{ID: "10.0.0.9", Port: 8080}}, 0)
		if err == nil {
			t.Errorf("token %q: served, want refused", token)
		}
	}
	if n := ownerAPI.calls.Load(); n != 0 {
		t.Errorf("refused callers made the owner poll %d times", n)
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	rv := &reviews{users: map[string]string{"owner-token": self, "reader-token": self}}
	srv, _ := owner(t, rv)
	c, addr := clientOf(t, srv, "reader-token")
	many := make([]elbv2.Target, maxTargets+1)
	for i := range many {
		many[i] = elbv2.Target{ID: "10.0.0.1", Port: int32(i%60000 + 1)}
	}
	for name, tc := range map[string]struct {
		arn     string
		targets []elbv2.Target
	}{
		"not an ARN":   {"tg", []elbv2.Target{{ID: "10.0.0.1", Port: 80}}},
		"no targets":   {"arn:x", nil},
		"bad port":     {"arn:x", []elbv2.Target{{ID: "10.0.0.1", Port: 0}}},
		"too many":     {"arn:x", many},
		"empty target": {"arn:x", []elbv2.Target{{Port: 80}}},
	} {
		if _, err := asker(c, addr).Poll(context.Background(), tc.arn, tc.targets, 0); err == nil {
			t.Errorf("%s: served, want refused", name)
		}
	}
}

func TestRingAgreesAndSpreads(t *testing.T) {
	addrs := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:8443"), netip.MustParseAddrPort("10.0.0.2:8443"), netip.MustParseAddrPort("10.0.0.3:8443")}
	rings := make([]*Ring, len(addrs))
	for i, a := range addrs {
		rings[i] = &Ring{Self: a}
		rings[i].SetReady(addrs)
	}
	owned := map[netip.AddrPort]int{}
	for g := range 300 {
		arn := "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/g" + string(rune('a'+g%26)) + "/" + string(rune('0'+g/26))
		var owner netip.AddrPort
		for i, r := range rings {
			o := addrs[i]
			if p := r.Owner(arn); p != nil {
				o = netip.MustParseAddrPort(p.ID())
			}
			if owner.IsValid() && o != owner {
				t.Fatalf("%s: replicas disagree on the owner (%s, %s)", arn, owner, o)
			}
			owner = o
		}
		owned[owner]++
	}
	for _, a := range addrs {
		if owned[a] < 50 {
			t.Errorf("replica %s owns %d of 300 groups, want a fair share", a, owned[a])
		}
	}
	// A replica outside the ready set (stopping) polls everything itself.
	r := &Ring{Self: netip.MustParseAddrPort("10.0.0.9:8443")}
	r.SetReady(addrs)
	if p := r.Owner("arn:x"); p != nil {
		t.Errorf("a replica that is not ready reads from %s, want its own poll", p.ID())
	}
}

// asker is a reader at 10.0.0.2 asking the replica at addr.
func asker(c *Client, addr netip.AddrPort) peer {
	return peer{addr: addr, self: netip.MustParseAddrPort("10.0.0.2:8443"), c: c}
}

type fixedOwner struct{ peer elbv2.Peer }

func (f fixedOwner) Owner(string) elbv2.Peer { return f.peer }

// Over the wire: a reader's release ends the owner's polls of its target,
// and an owner that leaves answers a waiting reader at once, which then
// polls for itself.
func TestReleaseAndLeaveOverTheWire(t *testing.T) {
	rv := &reviews{users: map[string]string{"owner-token": self, "reader-token": self}}
	ownerMetrics := metrics.New()
	ownerPoller := elbv2.NewPoller(&draining{}, time.Hour, ownerMetrics)
	srv := httptest.NewTLSServer(&Handler{Poller: ownerPoller, Reviews: rv, TokenFile: tokenFile(t, "owner-token"), Wait: time.Hour})
	t.Cleanup(srv.Close)
	c, addr := clientOf(t, srv, "reader-token")
	readerAPI := &draining{}
	reader := elbv2.NewPoller(readerAPI, time.Hour, metrics.New())
	reader.Share(fixedOwner{peer: asker(c, addr)}, time.Hour)
	const arn = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/1"
	next := func(ch <-chan elbv2.Report) (r elbv2.Report) {
		t.Helper()
		eventually(t, "a report", func() bool {
			select {
			case r = <-ch:
				return true
			default:
				return false
			}
		})
		return r
	}
	watched := func() float64 { return testutil.ToFloat64(ownerMetrics.TargetGroupsWatched) }

	reports, stop := reader.Subscribe(arn, elbv2.Target{ID: "10.0.0.9", Port: 8080})
	next(reports)
	stop()
	eventually(t, "the owner stops polling the released group", func() bool { return watched() == 0 })

	reports, stop = reader.Subscribe(arn, elbv2.Target{ID: "10.0.0.9", Port: 8080})
	defer stop()
	next(reports)
	eventually(t, "the reader waits on the owner's next poll", func() bool { return watched() == 1 })
	ownerPoller.Leave()
	if r := next(reports); r.Err != nil || readerAPI.calls.Load() != 1 {
		t.Errorf("after the owner left: report %+v and %d polls of the reader's own, want its own poll's answer", r, readerAPI.calls.Load())
	}
}
