package watcher

import (
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	"github.com/albdrain/albdrain/drain/watcher/peers"
)

// minRenew is the shortest Lease renewal: with a short poll interval
// (tests) renewing each interval would load the apiserver for nothing, as
// readers fall back at once on a replica that is gone.
const minRenew = time.Second

// sharePolls makes poller share its target groups with the other replicas
// when cfg asks for it and the manager knows where its peers reach it, and
// returns the handler the hold endpoint serves them with. The replica
// leaves the others as soon as stopping is closed.
func sharePolls(mgr ctrl.Manager, cfg Config, poller *elbv2.Poller, stopping <-chan struct{}) (map[string]http.Handler, error) {
	pc := cfg.Peers
	if !pc.Share {
		return nil, nil
	}
	logger := mgr.GetLogger().WithName("peers")
	if !pc.Advertise.IsValid() || len(validation.IsDNS1123Label(pc.Namespace)) > 0 || pc.ServerName == "" || pc.CAFile == "" {
		logger.Info("not sharing polls: the replica's address, namespace, hold Service name or CA is unknown (set --pod-ip, --pod-namespace, an https --watcher-url and --watcher-ca-file)")
		return nil, nil
	}
	ring := &peers.Ring{Self: pc.Advertise, Client: &peers.Client{HTTP: peers.NewHTTPClient(pc.CAFile, pc.ServerName), TokenFile: pc.TokenFile}}
	poller.Share(ring, cfg.AWSCallTimeout)
	if err := mgr.Add(&peers.Membership{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: pc.Namespace, Ring: ring,
		Renew: max(cfg.PollInterval, minRenew), Stopping: stopping, Leave: poller.Leave,
	}); err != nil {
		return nil, err
	}
	h := &peers.Handler{Poller: poller, Reviews: mgr.GetClient(), TokenFile: pc.TokenFile, Wait: poller.PeerWait()}
	return map[string]http.Handler{peers.Path: h}, nil
}
