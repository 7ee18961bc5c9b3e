package albemu

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

func (e *Emulator) apiCreateTargetGroup(r *request) (any, *APIError) {
	if r.TargetType != "" && r.TargetType != "ip" {
		return nil, validationErrorf("Target type '%s' is not supported by albemu; use 'ip'", r.TargetType)
	}
	if !r.Port.set {
		return nil, validationErrorf("A port must be specified")
	}
	var hc HealthCheck
	hcProtocol, err := r.HealthCheck.apply(&hc, r.Protocol)
	if err != nil {
		return nil, err
	}
	spec := TargetGroupSpec{
		Name: r.Name, Port: int32(r.Port.v), Protocol: r.Protocol, VpcID: r.VpcID,
		Tags: map[string]string{}, HealthCheck: hc,
	}
	for _, kv := range r.Tags {
		spec.Tags[kv.Key] = kv.Value
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.createTargetGroupLocked(spec)
	if err != nil {
		return nil, err
	}
	if hcProtocol != "" {
		tg.hcProtocol = hcProtocol
	}
	return xmlTargetGroupsResult{TargetGroups: listOf(tg.toXML())}, nil
}

func (e *Emulator) apiModifyTargetGroup(r *request) (any, *APIError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(r.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	hc := tg.hc
	hcProtocol, err := r.HealthCheck.apply(&hc, tg.protocol)
	if err != nil {
		return nil, err
	}
	if err := hc.validate(); err != nil {
		return nil, err
	}
	tg.setHealthCheck(hc)
	if hcProtocol != "" {
		tg.hcProtocol = hcProtocol
	}
	e.notifyLocked()
	return xmlTargetGroupsResult{TargetGroups: listOf(tg.toXML())}, nil
}

const maxPageSize = 400

func (e *Emulator) apiDescribeTargetGroups(r *request) (any, *APIError) {
	arns, names, lb := r.TargetGroupArns, r.Names, r.LoadBalancerArn
	filters := 0
	for _, set := range []bool{len(arns) > 0, len(names) > 0, lb != ""} {
		if set {
			filters++
		}
	}
	if filters > 1 {
		return nil, validationErrorf("Only one of LoadBalancerArn, TargetGroupArns or Names can be specified")
	}
	pageSize := maxPageSize
	if r.PageSize.set {
		pageSize = r.PageSize.v
	}
	start, err := decodeMarker(r.Marker)
	if err != nil {
		return nil, err
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	var groups []*targetGroup
	switch {
	case len(arns) > 0:
		for _, arn := range arns {
			tg, err := e.groupLocked(arn)
			if err != nil {
				return nil, err
			}
			groups = append(groups, tg)
		}
	case len(names) > 0:
		for _, name := range names {
			i := slices.IndexFunc(e.order, func(tg *targetGroup) bool { return tg.name == name })
			if i < 0 {
				return nil, errTargetGroupNotFound()
			}
			groups = append(groups, e.order[i])
		}
	case lb != "":
		for _, tg := range e.order {
			if slices.Contains(tg.lbArns, lb) {
				groups = append(groups, tg)
			}
		}
	default:
		groups = e.order
	}
	if start > len(groups) {
		return nil, validationErrorf("Invalid marker")
	}
	end := min(start+pageSize, len(groups))
	var res xmlTargetGroupsResult
	for _, tg := range groups[start:end] {
		res.TargetGroups.Members = append(res.TargetGroups.Members, tg.toXML())
	}
	if end < len(groups) {
		res.NextMarker = encodeMarker(end)
	}
	return res, nil
}

// Markers are opaque to clients, as AWS's are; inside they are an offset.
const markerPrefix = "albemu:"

func encodeMarker(offset int) string {
	return base64.StdEncoding.EncodeToString([]byte(markerPrefix + strconv.Itoa(offset)))
}

func decodeMarker(m string) (int, *APIError) {
	if m == "" {
		return 0, nil
	}
	raw, err := base64.StdEncoding.DecodeString(m)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(raw), markerPrefix); ok {
			if n, err := strconv.Atoi(rest); err == nil && n >= 0 {
				return n, nil
			}
		}
	}
	return 0, validationErrorf("Invalid marker")
}

const maxTagResources = 20

func (e *Emulator) apiDescribeTags(r *request) (any, *APIError) {
	arns := r.ResourceArns
	if len(arns) == 0 || len(arns) > maxTagResources {
		return nil, validationErrorf("1 validation error detected: Value at 'resourceArns' failed to satisfy constraint: Member must have length between 1 and %d", maxTagResources)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var res xmlTagsResult
	for _, arn := range arns {
		if !strings.Contains(arn, ":targetgroup/") {
			return nil, validationErrorf("'%s' is not a target group ARN; albemu emulates only target groups", arn)
		}
		tg, err := e.groupLocked(arn)
		if err != nil {
			return nil, err
		}
		res.TagDescriptions.Members = append(res.TagDescriptions.Members,
			xmlTagDescription{ResourceArn: arn, Tags: listOf(sortedKeyValues(tg.tags)...)})
	}
	return res, nil
}

func (e *Emulator) apiDescribeTargetGroupAttributes(r *request) (any, *APIError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(r.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	return xmlAttributesResult{Attributes: listOf(tg.attributes()...)}, nil
}

func (e *Emulator) apiModifyTargetGroupAttributes(r *request) (any, *APIError) {
	kvs := r.Attributes
	if len(kvs) == 0 {
		return nil, validationErrorf("1 validation error detected: Value null at 'attributes' failed to satisfy constraint: Member must not be null")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(r.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	if err := tg.setAttributes(kvs); err != nil {
		return nil, err
	}
	e.notifyLocked()
	return xmlAttributesResult{Attributes: listOf(tg.attributes()...)}, nil
}
