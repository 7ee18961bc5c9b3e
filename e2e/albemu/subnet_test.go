package albemu_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/albdrain/albdrain/e2e/albemu"
)

func TestTargetSubnetOption(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		subnet  string
		wantErr bool
	}{
		{"10.213.0.0/16", false},
		{"192.168.7.0/24", false},
		{"10.0.0.0/8", false},
		{"8.8.0.0/16", true},    // public
		{"0.0.0.0/0", true},     // everything
		{"10.0.0.0/7", true},    // wider than private space
		{"10.213.0.1/16", true}, // not a network address
		{"fd00::/64", true},     // IPv6: targets are IPv4
	} {
		t.Run(tt.subnet, func(t *testing.T) {
			e, err := albemu.New(albemu.Options{TargetSubnet: netip.MustParsePrefix(tt.subnet)})
			if err == nil {
				_ = e.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("New with TargetSubnet %s: %v, want error %v", tt.subnet, err, tt.wantErr)
			}
		})
	}
}

// TestTargetSubnetRegistration checks that the test's subnet is accepted
// besides loopback, and nothing else is.
func TestTargetSubnetRegistration(t *testing.T) {
	t.Parallel()
	e := albemu.NewForTest(t, albemu.Options{TargetSubnet: netip.MustParsePrefix("10.213.0.0/16")})
	arn, err := e.CreateTargetGroup(albemu.TargetGroupSpec{Name: "pods"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ip     string
		wantOK bool
	}{
		{"127.0.0.9", true},
		{"10.213.4.5", true},
		{"10.214.4.5", false},
		{"192.0.2.1", false},
	} {
		err := e.RegisterTargets(arn, albemu.Target{ID: tt.ip, Port: 8080})
		var apiErr *albemu.APIError
		switch {
		case tt.wantOK && err != nil:
			t.Errorf("register %s: %v, want accepted", tt.ip, err)
		case !tt.wantOK && (!errors.As(err, &apiErr) || apiErr.Code != albemu.CodeInvalidTarget):
			t.Errorf("register %s: %v, want InvalidTarget", tt.ip, err)
		}
	}
}
