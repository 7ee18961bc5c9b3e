// Package cabundle publishes the CA bundle pods trust for the hold endpoint
// as a ConfigMap in every namespace that has managed pods, as Kubernetes
// publishes its own CA as kube-root-ca.crt. The webhook projects it into
// each pod's trust volume, so the kubelet keeps it current while the pod
// runs: a CA that changes (a rotation, a reinstall) reaches the pods created
// before the change, which a copy made at admission never would. During a
// change the bundle holds the new CA and the ones it replaced (see merge),
// so a pod trusts every replica, whichever certificate it still serves, and
// the helper re-reads the file while it waits for the kubelet's renewal.
package cabundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/albdrain/albdrain/internal/contract"
)

// Timings of a Publisher; its zero fields take these.
const (
	// DefaultPoll is how often the CA file is read for a change, as
	// controller-runtime's certificate watcher re-reads the serving
	// certificate.
	DefaultPoll = 10 * time.Second
	// DefaultResync is how often a namespace's ConfigMap is checked even
	// when nothing changed, to restore one deleted or edited by hand.
	DefaultResync = 10 * time.Minute
)

// managed selects the pods the webhook marked.
var managed = client.MatchingLabels{contract.ManagedLabel: "true"}

// managedBy labels the ConfigMaps the publisher writes.
const managedBy = "albdrain"

// Publisher keeps contract.CABundleConfigMap current in every namespace of
// the managed pods in its manager's cache. Every replica runs one: they
// write the same bundle from the same CA file.
type Publisher struct {
	// File is the CA bundle's source, e.g. the mounted certificate
	// Secret's ca.crt; re-read every Poll.
	File string
	// Client writes ConfigMaps; Reader reads them (uncached: the manager
	// need not cache every ConfigMap of the cluster).
	Client client.Client
	Reader client.Reader
	// Poll and Resync default to DefaultPoll and DefaultResync.
	Poll, Resync time.Duration

	// pods is the manager's cache, which the manager's cache policy
	// (package app) keeps to managed pods; the publisher lists them with
	// the managed label all the same, since only their namespaces may get
	// the bundle.
	pods client.Reader

	mu      sync.Mutex
	current []byte // the CA file's PEM, nil until read
	// synced remembers, per namespace, which CA file it was last brought
	// up to date with and when, so a rollout's pod events cost no reads.
	synced  map[string]syncState
	changes chan event.GenericEvent
}

type syncState struct {
	sum [sha256.Size]byte
	at  time.Time
}

// Setup adds the publisher to mgr: a controller over the managed pods'
// namespaces, and the CA file's watch. It watches the pods of the
// manager's cache, which must hold managed pods only.
func (p *Publisher) Setup(mgr ctrl.Manager) error {
	if p.Poll <= 0 {
		p.Poll = DefaultPoll
	}
	if p.Resync <= 0 {
		p.Resync = DefaultResync
	}
	p.pods = mgr.GetCache()
	p.synced = map[string]syncState{}
	p.changes = make(chan event.GenericEvent)
	byNamespace := handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, pod *corev1.Pod) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: contract.CABundleConfigMap}}}
	})
	err := ctrl.NewControllerManagedBy(mgr).
		Named("cabundle").
		WatchesRawSource(source.Kind(mgr.GetCache(), &corev1.Pod{}, byNamespace)).
		WatchesRawSource(source.Channel(p.changes, &handler.EnqueueRequestForObject{})).
		Complete(p)
	if err != nil {
		return fmt.Errorf("CA bundle publisher: %w", err)
	}
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { p.watchFile(ctx); return nil }))
}

// watchFile reads the CA file now and every Poll; when it changed, every
// namespace with managed pods is brought up to date.
func (p *Publisher) watchFile(ctx context.Context) {
	logger := ctrl.LoggerFrom(ctx).WithName("cabundle")
	t := time.NewTicker(p.Poll)
	defer t.Stop()
	for {
		pemData, err := os.ReadFile(p.File)
		switch {
		case err != nil:
			logger.Error(err, "reading the CA file; pods keep the bundle they have", "file", p.File)
		case len(parse(pemData)) == 0:
			logger.Info("no certificate in the CA file; pods keep the bundle they have", "file", p.File)
		default:
			p.mu.Lock()
			changed := !bytes.Equal(p.current, pemData)
			if changed {
				p.current = pemData
				clear(p.synced)
			}
			p.mu.Unlock()
			if changed {
				logger.Info("CA changed; publishing the bundle", "file", p.File)
				p.touchAll(ctx)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// touchAll enqueues every namespace that has managed pods.
func (p *Publisher) touchAll(ctx context.Context) {
	var list corev1.PodList
	if err := p.pods.List(ctx, &list, managed); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing managed pods")
		return
	}
	seen := map[string]bool{}
	for _, pod := range list.Items {
		if seen[pod.Namespace] {
			continue
		}
		seen[pod.Namespace] = true
		obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: contract.CABundleConfigMap}}
		select {
		case p.changes <- event.GenericEvent{Object: obj}:
		case <-ctx.Done():
			return
		}
	}
}

// Reconcile brings one namespace's ConfigMap up to date with the CA file.
func (p *Publisher) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	p.mu.Lock()
	current := p.current
	last := p.synced[req.Namespace]
	p.mu.Unlock()
	if current == nil {
		return reconcile.Result{RequeueAfter: p.Poll}, nil
	}
	// A namespace whose managed pods are all gone is left alone; its
	// ConfigMap stays, as kube-root-ca.crt does.
	var pods corev1.PodList
	if err := p.pods.List(ctx, &pods, client.InNamespace(req.Namespace), managed); err != nil {
		return reconcile.Result{}, err
	}
	if len(pods.Items) == 0 {
		return reconcile.Result{}, nil
	}
	sum := sha256.Sum256(current)
	if last.sum == sum && time.Since(last.at) < p.Resync {
		return reconcile.Result{RequeueAfter: p.Resync - time.Since(last.at)}, nil
	}
	if err := p.publish(ctx, req.Namespace, current); err != nil {
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	p.mu.Lock()
	p.synced[req.Namespace] = syncState{sum: sum, at: time.Now()}
	p.mu.Unlock()
	return reconcile.Result{RequeueAfter: p.Resync}, nil
}

// publish creates or updates namespace's ConfigMap to hold current and the
// CAs it replaced.
func (p *Publisher) publish(ctx context.Context, namespace string, current []byte) error {
	cm := &corev1.ConfigMap{}
	err := p.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: contract.CABundleConfigMap}, cm)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	exists := err == nil
	bundle, err := merge(parse(current), parse([]byte(cm.Data[contract.CABundleFile])), time.Now())
	if err != nil {
		return err
	}
	if exists && cm.Data[contract.CABundleFile] == string(bundle) {
		return nil
	}
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	cm.Labels["app.kubernetes.io/managed-by"] = managedBy
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[contract.CABundleFile] = string(bundle)
	logger := ctrl.LoggerFrom(ctx).WithValues("namespace", namespace, "configMap", contract.CABundleConfigMap)
	if !exists {
		cm.Namespace, cm.Name = namespace, contract.CABundleConfigMap
		logger.Info("publishing the CA bundle")
		return p.Client.Create(ctx, cm)
	}
	logger.Info("updating the CA bundle")
	return p.Client.Update(ctx, cm)
}
