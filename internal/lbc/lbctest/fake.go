// Package lbctest gives tests an lbc.Finder over controller-runtime's fake
// client, with the indexes the Finder reads through.
package lbctest

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/albdrain/albdrain/internal/lbc"
)

// Scheme is client-go's scheme with the LBC's and the Gateway API's types.
func Scheme(tb testing.TB) *runtime.Scheme {
	tb.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		tb.Fatal(err)
	}
	if err := lbc.AddToScheme(s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// IndexedFakeClient is controller-runtime's fake client holding objs with the
// indexes lbc.Finder reads through, for every optional API.
func IndexedFakeClient(s *runtime.Scheme, objs ...client.Object) client.Client {
	b := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...)
	for _, i := range lbc.Indexes(lbc.AllAPIs...) {
		b = b.WithIndex(i.Object, i.Field, i.Extract)
	}
	return b.Build()
}

// NewFinder is a Finder, with every optional API served, over a fake cache
// holding objs.
func NewFinder(tb testing.TB, objs ...client.Object) *lbc.Finder {
	return &lbc.Finder{Reader: IndexedFakeClient(Scheme(tb), objs...), Served: lbc.NewAPISet(lbc.AllAPIs...)}
}
