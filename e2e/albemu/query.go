package albemu

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// queryForm reads AWS Query protocol parameters: scalars by name, lists as
// Name.member.N and lists of structures as Name.member.N.Field.
type queryForm url.Values

func (f queryForm) get(key string) string { return url.Values(f).Get(key) }

func (f queryForm) has(key string) bool { return url.Values(f).Has(key) }

// required reads a parameter that must be present, with AWS's message for
// a missing one.
func (f queryForm) required(key string) (string, *APIError) {
	v := f.get(key)
	if v == "" {
		return "", validationErrorf("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(key))
	}
	return v, nil
}

// intIn reads an optional integer parameter within [lo, hi].
func (f queryForm) intIn(key string, lo, hi int) (v int, ok bool, err *APIError) {
	if !f.has(key) {
		return 0, false, nil
	}
	n, convErr := strconv.Atoi(f.get(key))
	if convErr != nil || n < lo || n > hi {
		return 0, false, validationErrorf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must be an integer between %d and %d", f.get(key), lowerFirst(key), lo, hi)
	}
	return n, true, nil
}

// list returns the values of Name.member.N in N order.
func (f queryForm) list(name string) ([]string, *APIError) {
	items, err := f.structs(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it[""])
	}
	return out, nil
}

// structs returns the members of a list in N order, each as its fields;
// a scalar member is the field "".
func (f queryForm) structs(name string) ([]map[string]string, *APIError) {
	prefix := name + ".member."
	byIndex := map[int]map[string]string{}
	for key, vals := range f {
		rest, ok := strings.CutPrefix(key, prefix)
		if !ok {
			continue
		}
		idx, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(idx)
		if err != nil || n < 1 {
			return nil, validationErrorf("Invalid list index in parameter '%s'", key)
		}
		if byIndex[n] == nil {
			byIndex[n] = map[string]string{}
		}
		byIndex[n][field] = vals[0]
	}
	out := make([]map[string]string, 0, len(byIndex))
	for _, n := range slices.Sorted(maps.Keys(byIndex)) {
		out = append(out, byIndex[n])
	}
	return out, nil
}

// targets reads a Targets-style list of TargetDescription.
func (f queryForm) targets(name string) ([]Target, *APIError) {
	items, err := f.structs(name)
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(items))
	for _, it := range items {
		t := Target{ID: it["Id"]}
		if p, ok := it["Port"]; ok {
			port, convErr := parsePort(p)
			if convErr != nil {
				return nil, validationErrorf("Invalid target port: %v", convErr)
			}
			t.Port = port
		}
		out = append(out, t)
	}
	return out, nil
}

// keyValues reads a list of Key/Value structures (tags, attributes).
func (f queryForm) keyValues(name string) ([]keyValue, *APIError) {
	items, err := f.structs(name)
	if err != nil {
		return nil, err
	}
	out := make([]keyValue, 0, len(items))
	for _, it := range items {
		out = append(out, keyValue{Key: it["Key"], Value: it["Value"]})
	}
	return out, nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
