package procnet

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary socket tables to the parser: it must not panic,
// and whatever it accepts must survive being printed back in the kernel's
// format and parsed again unchanged, so no row is half-read.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/net/tcp", "testdata/net/tcp6"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"header only",
		"h\n\n\n",
		"h\n0: 0100007F:1F90 00000000:0000 0A",
		"h\n0: 0100007F:1F90 00000000:0000 ZZ",
		"h\n0: 01007F:1F90 00000000:0000 0A",
		"h\n0: 0100007F:FFFFF 00000000:0000 0A",
		"h\n0: 0100007F:1F90 00000000:0000 1FF",
		"h\n0: 0100007F 00000000:0000 0A",
		"h\n0: :1F90 :0 0A",
		"h\n0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A",
		"h\n0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D2F0 01",
		"h\r\n0: 0100007F:1F90 00000000:0000 0A\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, table []byte) {
		conns, err := Parse(bytes.NewReader(table))
		if err != nil {
			return
		}
		var out strings.Builder
		out.WriteString("  sl  local_address rem_address   st\n")
		for i, c := range conns {
			if !c.Local.IsValid() || !c.Remote.IsValid() {
				t.Fatalf("row %d: invalid address %+v", i, c)
			}
			fmt.Fprintf(&out, "%4d: %s %s %02X\n", i, format(c.Local.Addr().AsSlice(), c.Local.Port()), format(c.Remote.Addr().AsSlice(), c.Remote.Port()), c.State)
		}
		again, err := Parse(strings.NewReader(out.String()))
		if err != nil {
			t.Fatalf("reparsing %q: %v", out.String(), err)
		}
		if len(again) != len(conns) {
			t.Fatalf("reparsed %d rows, want %d", len(again), len(conns))
		}
		for i := range conns {
			if again[i] != conns[i] {
				t.Fatalf("row %d: %+v reparsed as %+v", i, conns[i], again[i])
			}
		}
	})
}

// format prints an address and port as the kernel does: each 32-bit word
// of the address in host byte order as %08X, then the port as %04X.
func format(addr []byte, port uint16) string {
	var b strings.Builder
	for i := 0; i < len(addr); i += 4 {
		fmt.Fprintf(&b, "%08X", binary.NativeEndian.Uint32(addr[i:i+4]))
	}
	return b.String() + ":" + strings.ToUpper(hex.EncodeToString([]byte{byte(port >> 8), byte(port)}))
}
