package shutdown

import (
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"defaults: no Service, stop at once", nil, nil},
		{"complete", []string{"--shutdown-service=albdrain", "--pod-namespace=albdrain-system", "--pod-ip=10.0.0.1"}, nil},
		{"Service without the pod", []string{"--shutdown-service=albdrain"}, []string{
			"--pod-namespace is required with --shutdown-service",
			`--pod-ip "" must be an IP address with --shutdown-service`,
		}},
		{"unexpanded pod IP", []string{"--shutdown-service=albdrain", "--pod-namespace=ns", "--pod-ip=$(POD_IP)"}, []string{
			`--pod-ip "$(POD_IP)" must be an IP address with --shutdown-service`,
		}},
		{"negative durations", []string{"--shutdown-endpoints-timeout=-1s", "--shutdown-settle=-1s", "--shutdown-grace=-1s"}, []string{
			"--shutdown-endpoints-timeout must not be negative",
			"--shutdown-settle must not be negative",
			"--shutdown-grace must not be negative",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			c.BindFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			var got []string
			if err := c.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}
