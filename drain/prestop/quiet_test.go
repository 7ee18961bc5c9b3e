package prestop

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/internal/contract"
)

// procRoot is a fake proc mount whose socket table the test rewrites.
type procRoot struct {
	t    *testing.T
	dir  string
	rows []string
}

func newProcRoot(t *testing.T) *procRoot {
	p := &procRoot{t: t, dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(p.dir, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	p.write()
	return p
}

// hexAddr renders an IPv4 address:port the way a little-endian kernel does.
func hexAddr(s string) string {
	ap := netip.MustParseAddrPort(s)
	b := ap.Addr().As4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], ap.Port())
}

// add appends a socket and rewrites the table atomically, as the kernel
// presents it.
func (p *procRoot) add(local, remote string, state int) {
	p.rows = append(p.rows, fmt.Sprintf("%4d: %s %s %02X 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000",
		len(p.rows), hexAddr(local), hexAddr(remote), state))
	p.write()
}

func (p *procRoot) write() {
	text := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" + strings.Join(p.rows, "\n") + "\n"
	tmp := filepath.Join(p.dir, "net", "tcp.tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, "net", "tcp")); err != nil {
		p.t.Fatal(err)
	}
}

func TestSampleKeepsConnectionsToServedPorts(t *testing.T) {
	p := newProcRoot(t)
	p.add("0.0.0.0:8080", "0.0.0.0:0", 0x0A)         // listener
	p.add("127.0.5.1:8080", "127.0.0.1:40000", 0x01) // served
	p.add("127.0.5.1:8080", "127.0.0.1:40001", 0x06) // served, TIME_WAIT
	p.add("127.0.5.1:9090", "127.0.0.1:40002", 0x01) // another port
	p.add("127.0.5.2:8080", "127.0.0.1:40003", 0x01) // another pod's IP
	p.add("127.0.5.1:40004", "127.0.0.1:8080", 0x01) // outgoing to 8080
	got, err := sample(p.dir, netip.MustParseAddr("127.0.5.1"), []int32{8080})
	if err != nil {
		t.Fatal(err)
	}
	want := map[fourTuple]struct{}{
		{netip.MustParseAddrPort("127.0.5.1:8080"), netip.MustParseAddrPort("127.0.0.1:40000")}: {},
		{netip.MustParseAddrPort("127.0.5.1:8080"), netip.MustParseAddrPort("127.0.0.1:40001")}: {},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("sample (-want +got):\n%s", diff)
	}

	// Without a pod IP every local address counts.
	got, err = sample(p.dir, netip.Addr{}, []int32{8080})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("sample without a pod IP kept %d connections, want 3", len(got))
	}
}

func TestNewConnectionRestartsTheQuietPeriod(t *testing.T) {
	p := newProcRoot(t)
	p.add("127.0.5.1:8080", "127.0.0.1:40000", 0x01)
	opts := quietOpts(t)
	opts.ProcRoot = p.dir
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watchConns(ctx, opts, netip.MustParseAddr("127.0.5.1"), []int32{8080})
	<-w.ready
	lastNew := func() time.Time {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.lastNew
	}
	before := lastNew()

	p.add("127.0.5.1:8080", "127.0.0.1:40001", 0x01)
	deadline := time.Now().Add(10 * time.Second)
	for !lastNew().After(before) {
		if time.Now().After(deadline) {
			t.Fatal("a new connection was never noticed")
		}
		time.Sleep(opts.SampleInterval)
	}

	// With the quiet period longer than what is left of the hold, the
	// wait ends unquiet; with a short one it ends quiet.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if w.waitQuiet(short, time.Hour) {
		t.Error("waitQuiet reported a quiet hour within 20ms")
	}
	if !w.waitQuiet(ctx, time.Millisecond) {
		t.Error("waitQuiet(1ms) did not end quiet")
	}
}

func TestMaxHoldCutsTheQuietPeriodShort(t *testing.T) {
	_, url := startWatcher(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		answerOutcome(w, contract.OutcomeDeregistered)
	})
	p := newProcRoot(t)
	opts := quietOpts(t)
	opts.ProcRoot = p.dir
	spec := waitSpec(50*time.Millisecond, time.Hour)
	spec.QuietPeriod = time.Hour
	res, _ := Run(context.Background(), spec, podEnv(url), opts)
	if res.Outcome != contract.OutcomeDeregistered || res.Quiet {
		t.Errorf("Run = %+v, want deregistered but not quiet", res)
	}
}
