package certs

import (
	"flag"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // substrings of the error; none means valid
	}{
		{name: "rotation off needs nothing", args: nil},
		{name: "rotation on, complete", args: []string{"--cert-rotation", "--cert-secret-namespace=albdrain", "--cert-dns-name=albdrain.albdrain.svc"}},
		{name: "rotation on, namespace and DNS name missing", args: []string{"--cert-rotation"},
			want: []string{"--cert-secret-namespace is required", "--cert-dns-name is required"}},
		{name: "invalid names", args: []string{"--cert-rotation", "--cert-secret-namespace=Albdrain", "--cert-dns-name=albdrain_svc", "--cert-secret-name=a/b", "--webhook-config-name="},
			want: []string{"--cert-secret-namespace \"Albdrain\"", "--cert-dns-name \"albdrain_svc\"", "--cert-secret-name \"a/b\"", "--webhook-config-name is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			c.BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}
