package lbc

// Helpers of the hand-written DeepCopy methods of the LBC types, which are
// written out rather than generated (see types.go).

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// copyItems deep-copies a list's items; nil stays nil, as generated code keeps it.
func copyItems[T any, PT interface {
	*T
	DeepCopyInto(*T)
}](in []T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i := range in {
		PT(&in[i]).DeepCopyInto(&out[i])
	}
	return out
}
