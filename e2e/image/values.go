package image

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
)

// HelperRef is the default reference of the helper image for albdrain's
// image ref: the same registry and tag, in a repository named with "-hold".
func HelperRef(ref string) (string, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("image: reference %q: %w", ref, err)
	}
	return tag.Context().Name() + "-hold:" + tag.TagStr(), nil
}

// ChartValues are the chart's values that install the images just built:
// albdrain's repository, tag and digest (which the chart uses over the
// tag), and the helper image by digest. Printed and written by `make image`
// so that nobody splits a reference by hand.
func ChartValues(ref, helperRef string, imgs *Images) (map[string]any, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image: reference %q: %w", ref, err)
	}
	helperTag, err := name.NewTag(helperRef, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image: reference %q: %w", helperRef, err)
	}
	digest, err := imgs.Albdrain.Digest()
	if err != nil {
		return nil, err
	}
	helperDigest, err := imgs.Helper.Digest()
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"image": map[string]any{
			"repository": tag.Context().Name(),
			"tag":        tag.TagStr(),
			"digest":     digest.String(),
		},
		"hold": map[string]any{
			"helperImage": helperTag.Context().Name() + "@" + helperDigest.String(),
		},
	}, nil
}
