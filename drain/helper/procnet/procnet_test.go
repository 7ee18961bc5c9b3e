package procnet

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// The fixtures were written on a little-endian machine, as the kernel prints them there.
func TestReadFixtures(t *testing.T) {
	got, err := Read("testdata")
	if err != nil {
		t.Fatal(err)
	}
	want := []Conn{
		{Local: ap("0.0.0.0:8080"), Remote: ap("0.0.0.0:0"), State: StateListen},
		{Local: ap("127.0.1.5:8080"), Remote: ap("127.0.0.1:54000"), State: 1},
		{Local: ap("127.0.1.5:8080"), Remote: ap("127.0.0.1:54004"), State: 6},
		{Local: ap("127.0.0.1:54008"), Remote: ap("127.0.1.5:8080"), State: 1},
		{Local: ap("[::]:8081"), Remote: ap("[::]:0"), State: StateListen},
		// IPv4-mapped addresses come back unmapped.
		{Local: ap("127.0.1.5:8081"), Remote: ap("127.0.0.1:50000"), State: 1},
		{Local: ap("[::1]:8081"), Remote: ap("[::1]:50001"), State: 8},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}
}

func TestReadWithoutTCP6(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "net", "tcp"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Errorf("got %d sockets, want the 4 of tcp", len(got))
	}
}

func TestReadMissingTCPFails(t *testing.T) {
	if _, err := Read(t.TempDir()); err == nil {
		t.Error("Read of a root without net/tcp succeeded")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, line := range []string{
		"0: 0100007F 00000000:0000 0A",
		"0: 0100007F:1F90 00000000:0000 ZZ",
		"0: 01007F:1F90 00000000:0000 0A",
		"0: 0100007F:1F90",
	} {
		if _, err := Parse(strings.NewReader("header\n" + line + "\n")); err == nil {
			t.Errorf("Parse(%q) succeeded", line)
		}
	}
}

// The live kernel table must show a connection this test makes, whatever the
// machine's byte order.
func TestReadLiveKernel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.3.7:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := ap(ln.Addr().String())
	client := ap(c.LocalAddr().String())

	got, err := Read("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got, func(c Conn) bool { return c.Local == server && c.State == StateListen }) {
		t.Errorf("listener %v not in /proc/net/tcp", server)
	}
	if !slices.ContainsFunc(got, func(c Conn) bool { return c.Local == server && c.Remote == client }) {
		t.Errorf("accepted connection %v <- %v not in /proc/net/tcp", server, client)
	}
}
