package traffic

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestProcNetSource(t *testing.T) {
	socks, err := ProcNet{Root: "../procnet/testdata"}.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) == 0 {
		t.Fatal("no sockets in the fixture tables")
	}
	for _, s := range socks {
		if s.Info != nil {
			t.Errorf("%v: /proc/net/tcp carries no tcp_info, got %+v", s.Local, s.Info)
		}
	}
	if _, err := (ProcNet{Root: t.TempDir()}).Sockets(); err == nil {
		t.Error("a proc root without socket tables gave no error")
	}
}

func TestOpenPrefersSockDiag(t *testing.T) {
	src, sdErr, _ := Open(t.TempDir(), Filter{})
	if sdErr != nil {
		t.Skipf("sock_diag unavailable here: %v", sdErr)
	}
	if d := cmp.Diff(Source(SockDiag{}), src, cmpopts.EquateComparable(netip.Addr{})); d != "" {
		t.Errorf("Open (-want +got):\n%s", d)
	}
	// Asked for a pod's served ports, it has the kernel filter by them.
	f := Filter{PodIP: netip.MustParseAddr("127.0.26.2"), Ports: []uint16{8080, 9090}}
	src, _, _ = Open(t.TempDir(), f)
	if d := cmp.Diff(Source(SockDiag{Ports: f.Ports, Addr: f.PodIP}), src, cmpopts.EquateComparable(netip.Addr{})); d != "" {
		t.Errorf("Open with ports (-want +got):\n%s", d)
	}
	// sock_diag sees this test's own listener, with its tcp_info.
	ln := listen(t, "127.0.26.1:0")
	socks, err := SockDiag{}.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range socks {
		found = found || (s.Local == ln && s.State == stateListen)
	}
	if !found {
		t.Errorf("sock_diag did not list the listener on %v", ln)
	}
}

func listen(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	port := pod(t, addr[:len(addr)-2])
	return netip.AddrPortFrom(netip.MustParseAddr(addr[:len(addr)-2]), port)
}
