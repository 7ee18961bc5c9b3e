package kubelet

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/albdrain/albdrain/e2e/load"
)

// A request that asks for a serve time is answered no sooner; one that
// does not, such as a health check, gets the node's setting.
func TestAppHandlerServesEachRequestForItsOwnTime(t *testing.T) {
	h := appHandler("web-1", 0)
	for _, tc := range []struct {
		header string
		least  time.Duration
	}{{"300ms", 300 * time.Millisecond}, {"", 0}, {"soon", 0}} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.header != "" {
			req.Header.Set(load.ServeTimeHeader, tc.header)
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		if took := time.Since(start); took < tc.least || rec.Code != http.StatusOK {
			t.Errorf("serve time %q: answered %d after %v, want 200 after at least %v", tc.header, rec.Code, took, tc.least)
		}
	}
}
