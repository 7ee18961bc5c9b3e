package ports

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Processes reserving ports in TestReserveAcrossProcesses, and how many each.
const (
	children      = 4
	portsPerChild = 6
)

// childEnv names, in a child process of TestReserveAcrossProcesses, the
// prefix of its reservations.
const childEnv = "ALBDRAIN_PORTS_TEST_PREFIX"

// testCandidates are the ports the children share: exactly as many as they
// reserve together, so that any port reserved twice leaves one short.
func testCandidates() []int {
	var out []int
	for p := lowest; p < lowest+children*portsPerChild; p++ {
		out = append(out, p)
	}
	return out
}

// TestReserveAcrossProcesses has processes reserve ports together from one
// small range: no port may go to two of them, and once all are held, none
// is left for another process. The children do not bind the ports (no
// probe) and reserve under a name of this test's own, so no real port or
// reservation of a harness running meanwhile is involved.
func TestReserveAcrossProcesses(t *testing.T) {
	prefix := fmt.Sprintf("%stest-%d-", namePrefix, os.Getpid())
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	var procs []child
	t.Cleanup(func() {
		for _, c := range procs {
			c.stdin.Close() // a child exits when its input ends
			c.cmd.Wait()
		}
	})
	for range children {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReserveChild$")
		cmd.Env = append(os.Environ(), childEnv+"="+prefix)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)})
	}
	var got []int
	for i, c := range procs {
		line, err := c.out.ReadString('\n')
		if err != nil {
			t.Fatalf("child %d: no ports reported: %v", i, err)
		}
		for _, f := range strings.Fields(line) {
			p, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("child %d: %q", i, line)
			}
			got = append(got, p)
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff(testCandidates(), got); diff != "" {
		t.Errorf("ports the children reserved together, sorted (-each once +got):\n%s", diff)
	}

	// The children still hold every port: this process finds none.
	c := &chooser{candidates: testCandidates(), prefix: prefix}
	if p, err := c.reserve(); err == nil {
		t.Errorf("reserved port %d while the children held every one", p)
	}
}

// TestReserveChild is a child of TestReserveAcrossProcesses: it reserves
// its ports, prints them and holds them until its input ends.
func TestReserveChild(t *testing.T) {
	prefix := os.Getenv(childEnv)
	if prefix == "" {
		t.Skip("run by TestReserveAcrossProcesses")
	}
	c := &chooser{candidates: testCandidates(), prefix: prefix}
	var got []string
	for range portsPerChild {
		p, err := c.reserve()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strconv.Itoa(p))
	}
	fmt.Println(strings.Join(got, " "))
	io.Copy(io.Discard, os.Stdin)
}

// TestReserveSkipsPortInUse: a port served by a process outside the
// harness, which holds no reservation for it, is skipped.
func TestReserveSkipsPortInUse(t *testing.T) {
	taken, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(taken))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	other, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	probe := func(name string, cands ...int) *chooser {
		return &chooser{candidates: cands, prefix: fmt.Sprintf("%s%s-%d-", namePrefix, name, os.Getpid()), probe: true}
	}
	if p, err := probe("only-taken", taken).reserve(); err == nil {
		t.Errorf("reserved %d, which is in use", p)
	}
	p, err := probe("taken-first", taken, other).reserve()
	if err != nil {
		t.Fatal(err)
	}
	if p != other {
		t.Errorf("reserved %d, want %d (%d is in use)", p, other, taken)
	}
}

// TestReserve: concurrent callers get distinct ports outside the ephemeral
// range, each of which a server can then bind on every address.
func TestReserve(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(raw), &lo, &hi); err != nil {
		t.Fatal(err)
	}
	const n = 16
	got := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p, err := Reserve()
			if err != nil {
				t.Error(err)
			}
			got[i] = p
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, p := range got {
		if seen[p] {
			t.Errorf("port %d reserved twice", p)
		}
		seen[p] = true
		if p < lowest || p >= lo && p <= hi || p > 65535 {
			t.Errorf("port %d: want from %d up, outside the ephemeral range %d-%d", p, lowest, lo, hi)
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("bind the reserved port: %v", err)
			continue
		}
		ln.Close()
	}
}

func TestCandidates(t *testing.T) {
	for name, tc := range map[string]struct {
		rangeFile, reservedFile string
		wantLen                 int
		wantOut                 []int // ports that must not be candidates
		wantErr                 bool
	}{
		"linux default": {rangeFile: "32768\t60999\n", reservedFile: "\n", wantLen: (32768 - lowest) + (65535 - 60999),
			wantOut: []int{lowest - 1, 32768, 45000, 60999}},
		"reserved ports and ranges excluded": {rangeFile: "32768 60999\n", reservedFile: "20000,20005-20009,61000\n",
			wantLen: (32768 - lowest) + (65535 - 60999) - 7, wantOut: []int{20000, 20005, 20009, 61000}},
		"no reserved ports file":      {rangeFile: "32768 60999\n", wantLen: (32768 - lowest) + (65535 - 60999)},
		"ephemeral range covers all":  {rangeFile: "1024 65535\n", wantErr: true},
		"malformed range":             {rangeFile: "32768\n", wantErr: true},
		"malformed reserved port":     {rangeFile: "32768 60999\n", reservedFile: "80,x\n", wantErr: true},
		"malformed reserved end":      {rangeFile: "32768 60999\n", reservedFile: "80-\n", wantErr: true},
		"ephemeral range from lowest": {rangeFile: "20000 60999\n", wantLen: 65535 - 60999},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "ip_local_port_range"), []byte(tc.rangeFile), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.reservedFile != "" {
				if err := os.WriteFile(filepath.Join(dir, "ip_local_reserved_ports"), []byte(tc.reservedFile), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := candidates(dir)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantLen, len(got)); diff != "" {
				t.Errorf("number of candidates (-want +got):\n%s", diff)
			}
			for _, p := range tc.wantOut {
				if slices.Contains(got, p) {
					t.Errorf("port %d is a candidate", p)
				}
			}
		})
	}
}
