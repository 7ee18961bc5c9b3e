package release

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushIndex sends idx, with every image it holds, to the registry named in
// ref, with the credentials of the local Docker configuration when there are any.
func PushIndex(ref string, idx v1.ImageIndex, opts ...name.Option) error {
	tag, err := name.NewTag(ref, opts...)
	if err != nil {
		return fmt.Errorf("release: reference %q: %w", ref, err)
	}
	if err := remote.WriteIndex(tag, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("release: push %s: %w", tag, err)
	}
	return nil
}
