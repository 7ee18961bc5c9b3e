package release

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestChartValues checks the values `make image` prints: the reference split
// into repository and tag, the index digest, and the helper by digest in the
// default -hold repository.
func TestChartValues(t *testing.T) {
	idx, err := Index(smallImage(t))
	if err != nil {
		t.Fatal(err)
	}
	ref := "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443/team/albdrain:1.2.3"
	helperRef, err := HelperRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ChartValues(ref, helperRef, &Images{Albdrain: idx, Helper: idx})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	want := &Values{}
	want.Image.Repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443/team/albdrain"
	want.Image.Tag, want.Image.Digest = "1.2.3", d.String()
	want.Hold.HelperImage = "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443/team/albdrain-hold@" + d.String()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if _, err := HelperRef("no tag@sha256:x"); err == nil {
		t.Error("HelperRef accepted an invalid reference")
	}
}
