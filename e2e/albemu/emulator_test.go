package albemu_test

import (
	"net/http"
	"testing"

	"github.com/albdrain/albdrain/e2e/albemu"
)

func TestCloseStopsEverything(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{})
	a := startTarget(t, "127.0.0.50")
	d.registerHealthy(t, ctx, a)
	// Pending lag and drain timers must not hold Close up.
	if err := d.emu.DeregisterTargets(d.arn, a.Target); err != nil {
		t.Fatal(err)
	}

	if err := d.emu.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := d.emu.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, _, err := get(ctx, d.ln.URL()); err == nil {
		t.Fatal("listener still answers after Close")
	}
	if _, err := http.Get(d.emu.URL()); err == nil {
		t.Fatal("API still answers after Close")
	}
	if _, err := d.emu.AddListener(d.arn, ""); err == nil {
		t.Fatal("AddListener works on a closed emulator")
	}
}
