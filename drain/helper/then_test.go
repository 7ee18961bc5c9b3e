package helper

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/albdrain/albdrain/internal/contract"
)

func TestThenExecRunsArgvWithoutAShell(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "it ran; $HOME")
	var stdout bytes.Buffer
	opts := quietOpts(t)
	opts.Stdout = &stdout
	// A shell would split the name and expand $HOME; exec must not.
	h := &contract.Handler{Exec: &contract.ExecAction{Command: []string{"touch", marker}}}
	if err := runThen(context.Background(), h, netip.Addr{}, opts.withDefaults()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("exec hook did not create %q: %v", marker, err)
	}

	h = &contract.Handler{Exec: &contract.ExecAction{Command: []string{"echo", "draining"}}}
	if err := runThen(context.Background(), h, netip.Addr{}, opts.withDefaults()); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "draining\n" {
		t.Errorf("exec hook stdout %q, want the helper's stdout", stdout.String())
	}

	h = &contract.Handler{Exec: &contract.ExecAction{Command: []string{"false"}}}
	if err := runThen(context.Background(), h, netip.Addr{}, opts.withDefaults()); err == nil {
		t.Error("a failing exec hook reported success")
	}
}

// hookServer records the GET a hook makes.
func hookServer(t *testing.T, addr string) (got chan *http.Request, port int) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	got = make(chan *http.Request, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		if r.URL.Path == "/broken" {
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return got, ln.Addr().(*net.TCPAddr).Port
}

func TestThenHTTPGetGoesToThePodIP(t *testing.T) {
	got, port := hookServer(t, "127.0.6.1:0")
	h := &contract.Handler{HTTPGet: &contract.HTTPGetAction{
		Path:        "drain?now=1",
		Port:        contract.Port(strconv.Itoa(port)),
		HTTPHeaders: []contract.HTTPHeader{{Name: "X-Drain", Value: "yes"}},
	}}
	if err := runThen(context.Background(), h, netip.MustParseAddr("127.0.6.1"), quietOpts(t).withDefaults()); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.Method != http.MethodGet || r.URL.Path != "/drain" || r.URL.RawQuery != "now=1" || r.Header.Get("X-Drain") != "yes" {
		t.Errorf("hook sent %s %s with X-Drain=%q", r.Method, r.URL, r.Header.Get("X-Drain"))
	}
}

func TestThenHTTPGetToANamedHostAndNumericStringPort(t *testing.T) {
	got, port := hookServer(t, "127.0.0.1:0")
	h := &contract.Handler{HTTPGet: &contract.HTTPGetAction{Host: "127.0.0.1", Path: "/stop", Port: contract.Port(strconv.Itoa(port))}}
	if err := runThen(context.Background(), h, netip.MustParseAddr("127.0.6.2"), quietOpts(t).withDefaults()); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.URL.Path != "/stop" {
		t.Errorf("hook requested %s, want /stop", r.URL.Path)
	}
}

func TestThenHTTPGetFailures(t *testing.T) {
	_, port := hookServer(t, "127.0.0.1:0")
	for name, g := range map[string]*contract.HTTPGetAction{
		"error status": {Host: "127.0.0.1", Path: "/broken", Port: contract.Port(strconv.Itoa(port))},
		"named port":   {Host: "127.0.0.1", Path: "/", Port: contract.Port("http")},
	} {
		if err := runThen(context.Background(), &contract.Handler{HTTPGet: g}, netip.Addr{}, quietOpts(t).withDefaults()); err == nil {
			t.Errorf("%s: hook reported success", name)
		}
	}
}

func TestThenSleepAndUnsupported(t *testing.T) {
	h := &contract.Handler{Sleep: &contract.SleepAction{Seconds: 0}}
	if err := runThen(context.Background(), h, netip.Addr{}, quietOpts(t).withDefaults()); err != nil {
		t.Errorf("sleep hook: %v", err)
	}
	h = &contract.Handler{}
	if err := runThen(context.Background(), h, netip.Addr{}, quietOpts(t).withDefaults()); err == nil {
		t.Error("a tcpSocket hook, which the kubelet does not run either, reported success")
	}
}

func TestSleepModeThenRunsTheHook(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "done")
	spec := contract.Spec{
		Mode:    contract.ModeSleep,
		MaxHold: 10 * time.Millisecond,
		Then:    &contract.Handler{Exec: &contract.ExecAction{Command: []string{"touch", marker}}},
	}
	start := time.Now()
	if _, err := Run(context.Background(), spec, Env{}, quietOpts(t)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < spec.MaxHold {
		t.Errorf("sleep mode returned after %v, before its %v sleep", took, spec.MaxHold)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("then-hook did not run after the sleep: %v", err)
	}
}

func TestInstallCopiesItself(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "albdrain-hold")
	if err := Install(dest); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("installed file differs from the executable")
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("installed mode %v (%v), want 0755", fi.Mode(), err)
	}
	if err := Install(filepath.Join(t.TempDir(), "missing", "albdrain-hold")); err == nil {
		t.Error("Install into a missing directory succeeded")
	}
}
