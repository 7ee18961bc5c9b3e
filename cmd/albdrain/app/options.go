package app

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Options are what a manager built outside main takes besides its flags.
// main passes none.
type Options struct {
	// AWS replaces the SDK's default configuration chain (environment,
	// IRSA, EKS Pod Identity, instance metadata); it is checked like one
	// the chain resolved.
	AWS *aws.Config
	// Process, when set, is shared with the other managers of this
	// process: see InProcess.
	Process *Process
}

// Process is the one accommodation product code makes for tests that run
// several managers in one process, as replicas or one after another.
// controller-runtime's metrics registry and its controller names are
// process-wide, so those managers record into one set of collectors,
// registered once, and their controllers' names may repeat. A manager
// built without a Process registers collectors of its own and its
// controllers' names must be unique, as in main, which builds one.
type Process struct {
	// Metrics are the collectors every manager of the process records into.
	Metrics  *Metrics
	rotators atomic.Int64
}

// InProcess returns the process's Process, its collectors registered on
// controller-runtime's registry the first time.
var InProcess = sync.OnceValue(func() *Process {
	m := NewMetrics()
	if err := m.Register(ctrlmetrics.Registry); err != nil {
		panic(fmt.Sprintf("register albdrain's metrics: %v", err))
	}
	return &Process{Metrics: m}
})

// rotatorName names the certificate rotator's controller, which
// controller-runtime requires unique in the process whatever the manager's
// options say.
func (p *Process) rotatorName() string {
	const name = "cert-rotator"
	if p == nil {
		return name
	}
	if n := p.rotators.Add(1); n > 1 {
		return name + "-" + strconv.FormatInt(n, 10)
	}
	return name
}

// metrics are the collectors the manager records into: the process's, or
// new ones registered on controller-runtime's registry.
func (p *Process) metrics() (*Metrics, error) {
	if p != nil {
		return p.Metrics, nil
	}
	m := NewMetrics()
	if err := m.Register(ctrlmetrics.Registry); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return m, nil
}
