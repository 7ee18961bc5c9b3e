// Package backendstest gives unit tests a fake cache-backed client that
// answers the indexed lookups of backends.Finder.
package backendstest

import (
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/albdrain/albdrain/webhook/backends"
)

// IndexedFakeClient is controller-runtime's fake client holding objs with the
// indexes backends.Finder reads through.
func IndexedFakeClient(s *runtime.Scheme, objs ...client.Object) client.Client {
	b := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...)
	for _, i := range backends.Indexes(true) {
		b = b.WithIndex(i.Object, i.Field, i.Extract)
	}
	return b.Build()
}
