package release

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
)

// HelperRef is the default reference of the helper image for albdrain's
// image ref: the same registry and tag, in a repository named with "-hold".
func HelperRef(ref string) (string, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("release: reference %q: %w", ref, err)
	}
	return tag.Context().Name() + "-hold:" + tag.TagStr(), nil
}

// Values are the chart's values that install the images just built:
// albdrain's repository, tag and digest (which the chart uses over the
// tag), and the helper image by digest. Printed and written by `make image`
// so that nobody splits a reference by hand.
type Values struct {
	Image struct {
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
		Digest     string `json:"digest"`
	} `json:"image"`
	Hold struct {
		HelperImage string `json:"helperImage"`
	} `json:"hold"`
}

// ChartValues returns the Values of imgs pushed as ref and helperRef.
func ChartValues(ref, helperRef string, imgs *Images) (*Values, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("release: reference %q: %w", ref, err)
	}
	helperTag, err := name.NewTag(helperRef, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("release: reference %q: %w", helperRef, err)
	}
	digest, err := imgs.Albdrain.Digest()
	if err != nil {
		return nil, err
	}
	helperDigest, err := imgs.Helper.Digest()
	if err != nil {
		return nil, err
	}
	v := &Values{}
	v.Image.Repository, v.Image.Tag, v.Image.Digest = tag.Context().Name(), tag.TagStr(), digest.String()
	v.Hold.HelperImage = helperTag.Context().Name() + "@" + helperDigest.String()
	return v, nil
}
