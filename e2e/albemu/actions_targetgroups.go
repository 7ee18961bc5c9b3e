package albemu

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (e *Emulator) apiCreateTargetGroup(f queryForm) (any, *APIError) {
	name, err := f.required("Name")
	if err != nil {
		return nil, err
	}
	if tt := f.get("TargetType"); tt != "" && tt != "ip" {
		return nil, validationErrorf("Target type '%s' is not supported by albemu; use 'ip'", tt)
	}
	protocol, err := f.required("Protocol")
	if err != nil {
		return nil, err
	}
	port, _, err := f.intIn("Port", 1, 65535)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		return nil, validationErrorf("A port must be specified")
	}
	var hc HealthCheck
	hcProtocol, err := readHealthCheckParams(f, &hc)
	if err != nil {
		return nil, err
	}
	tags, err := f.keyValues("Tags")
	if err != nil {
		return nil, err
	}
	spec := TargetGroupSpec{
		Name: name, Port: int32(port), Protocol: protocol, VpcID: f.get("VpcId"),
		Tags: map[string]string{}, HealthCheck: hc,
	}
	for _, kv := range tags {
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

func (e *Emulator) apiModifyTargetGroup(f queryForm) (any, *APIError) {
	arn, err := f.required("TargetGroupArn")
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(arn)
	if err != nil {
		return nil, err
	}
	hc := tg.hc
	hcProtocol, err := readHealthCheckParams(f, &hc)
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

// readHealthCheckParams overrides hc with the health-check parameters
// present, within AWS's ranges, and returns HealthCheckProtocol if given.
func readHealthCheckParams(f queryForm, hc *HealthCheck) (string, *APIError) {
	if f.has("HealthCheckEnabled") && f.get("HealthCheckEnabled") != "true" {
		return "", validationErrorf("Health checks cannot be disabled for target groups with target type 'ip'")
	}
	protocol := f.get("HealthCheckProtocol")
	if protocol != "" && protocol != "HTTP" && protocol != "HTTPS" {
		return "", validationErrorf("Health check protocol '%s' is not supported for an application load balancer target group", protocol)
	}
	if f.has("HealthCheckPath") {
		hc.Path = f.get("HealthCheckPath")
	}
	if f.has("HealthCheckPort") {
		hc.Port = f.get("HealthCheckPort")
	}
	if f.has("Matcher.HttpCode") {
		hc.Matcher = f.get("Matcher.HttpCode")
	}
	for _, p := range []struct {
		key    string
		lo, hi int
		set    func(int)
	}{
		{"HealthCheckIntervalSeconds", 5, 300, func(n int) { hc.Interval = time.Duration(n) * time.Second }},
		{"HealthCheckTimeoutSeconds", 2, 120, func(n int) { hc.Timeout = time.Duration(n) * time.Second }},
		{"HealthyThresholdCount", 2, 10, func(n int) { hc.HealthyThreshold = n }},
		{"UnhealthyThresholdCount", 2, 10, func(n int) { hc.UnhealthyThreshold = n }},
	} {
		n, ok, err := f.intIn(p.key, p.lo, p.hi)
		if err != nil {
			return "", err
		}
		if ok {
			p.set(n)
		}
	}
	return protocol, nil
}

const maxPageSize = 400

func (e *Emulator) apiDescribeTargetGroups(f queryForm) (any, *APIError) {
	arns, err := f.list("TargetGroupArns")
	if err != nil {
		return nil, err
	}
	names, err := f.list("Names")
	if err != nil {
		return nil, err
	}
	lb := f.get("LoadBalancerArn")
	filters := 0
	for _, set := range []bool{len(arns) > 0, len(names) > 0, lb != ""} {
		if set {
			filters++
		}
	}
	if filters > 1 {
		return nil, validationErrorf("Only one of LoadBalancerArn, TargetGroupArns or Names can be specified")
	}
	pageSize, ok, err := f.intIn("PageSize", 1, maxPageSize)
	if err != nil {
		return nil, err
	}
	if !ok {
		pageSize = maxPageSize
	}
	start, err := decodeMarker(f.get("Marker"))
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

func (e *Emulator) apiDescribeTags(f queryForm) (any, *APIError) {
	arns, err := f.list("ResourceArns")
	if err != nil {
		return nil, err
	}
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

func (e *Emulator) apiDescribeTargetGroupAttributes(f queryForm) (any, *APIError) {
	arn, err := f.required("TargetGroupArn")
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(arn)
	if err != nil {
		return nil, err
	}
	return xmlAttributesResult{Attributes: listOf(tg.attributes()...)}, nil
}

func (e *Emulator) apiModifyTargetGroupAttributes(f queryForm) (any, *APIError) {
	arn, err := f.required("TargetGroupArn")
	if err != nil {
		return nil, err
	}
	kvs, err := f.keyValues("Attributes")
	if err != nil {
		return nil, err
	}
	if len(kvs) == 0 {
		return nil, validationErrorf("1 validation error detected: Value null at 'attributes' failed to satisfy constraint: Member must not be null")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(arn)
	if err != nil {
		return nil, err
	}
	if err := tg.setAttributes(kvs); err != nil {
		return nil, err
	}
	e.notifyLocked()
	return xmlAttributesResult{Attributes: listOf(tg.attributes()...)}, nil
}
