package albemu

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// TargetGroupSpec describes a target group to create.
type TargetGroupSpec struct {
	Name string // required: 1-32 alphanumerics or hyphens
	Port int32  // default 80
	// Protocol is "HTTP" (default) or "HTTPS", served by an ALB listener
	// (AddListener) that speaks HTTP, or "TCP", served by an NLB listener
	// (AddNLBListener) that forwards flows.
	Protocol         string
	VpcID            string // default "vpc-0a1b2c3d4e5f60718"
	LoadBalancerArns []string
	Tags             map[string]string
	// DeregistrationDelay: zero uses Options.DefaultDeregistrationDelay, and
	// Immediate means none.
	DeregistrationDelay time.Duration
	// HealthCheck: zero fields use Options.DefaultHealthCheck.
	HealthCheck HealthCheck
}

const (
	defaultVpcID          = "vpc-0a1b2c3d4e5f60718"
	attrDeregistrationKey = "deregistration_delay.timeout_seconds"
	// AttrConnectionTermination is the NLB target group attribute that has
	// flows to a deregistered target closed when its delay ends.
	AttrConnectionTermination = "deregistration_delay.connection_termination.enabled"
)

// otherAttributeDefaults are the remaining attributes AWS reports for an ALB
// ip target group. They are stored and echoed but do not change behaviour:
// the data plane always does plain round robin.
var otherAttributeDefaults = map[string]string{
	"stickiness.enabled":                                                             "false",
	"stickiness.type":                                                                "lb_cookie",
	"stickiness.lb_cookie.duration_seconds":                                          "86400",
	"stickiness.app_cookie.cookie_name":                                              "",
	"stickiness.app_cookie.duration_seconds":                                         "86400",
	"load_balancing.algorithm.type":                                                  "round_robin",
	"load_balancing.algorithm.anomaly_mitigation":                                    "off",
	"load_balancing.cross_zone.enabled":                                              "use_load_balancer_configuration",
	"slow_start.duration_seconds":                                                    "0",
	"target_group_health.dns_failover.minimum_healthy_targets.count":                 "1",
	"target_group_health.dns_failover.minimum_healthy_targets.percentage":            "off",
	"target_group_health.unhealthy_state_routing.minimum_healthy_targets.count":      "1",
	"target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage": "off",
}

// attributeDefaults are the attributes a new target group of protocol has
// besides its deregistration delay.
func attributeDefaults(protocol string) map[string]string {
	attrs := maps.Clone(otherAttributeDefaults)
	if protocol == "TCP" {
		attrs[AttrConnectionTermination] = "false"
	}
	return attrs
}

// terminatesFlows reports whether requests and flows still running when a
// target's deregistration delay ends are cut: always for an ALB, and for
// an NLB only with connection termination enabled.
func (tg *targetGroup) terminatesFlows() bool {
	return tg.protocol != "TCP" || tg.attrs[AttrConnectionTermination] == "true"
}

// targetGroup is one target group: its configuration, its control-plane
// registrations and its data-plane routing set. Guarded by Emulator.mu.
type targetGroup struct {
	arn, name, protocol, vpcID string
	port                       int32
	lbArns                     []string
	tags                       map[string]string
	hc                         HealthCheck
	hcProtocol                 string        // echoed only: probes always speak HTTP
	hcChanged                  chan struct{} // closed when hc changes, to wake the probes
	delay                      time.Duration // >= 0
	attrs                      map[string]string

	// targets is the control plane's view: registered and draining targets.
	targets map[Target]*registration
	// routes are the data plane's views, one per node, each trailing
	// targets by its own propagation lags.
	routes [][]*route
	next   []int // round-robin cursors, per node
	// clients[i] is when node i first got a client connection for the
	// group (see Stop.Serving); nil until one did.
	clients []time.Time
}

var targetGroupName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

// CreateTargetGroup creates an ip target group and returns its ARN. Like
// AWS, creating a group whose name exists with the same port, protocol and
// VPC returns the existing one.
func (e *Emulator) CreateTargetGroup(spec TargetGroupSpec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.createTargetGroupLocked(spec)
	if err != nil {
		return "", err
	}
	return tg.arn, nil
}

func (e *Emulator) createTargetGroupLocked(spec TargetGroupSpec) (*targetGroup, *APIError) {
	if !targetGroupName.MatchString(spec.Name) {
		return nil, validationErrorf("Target group name '%s' must be 1-32 alphanumeric characters or hyphens, and must not begin or end with a hyphen", spec.Name)
	}
	if spec.Port == 0 {
		spec.Port = 80
	}
	if spec.Port < 1 || spec.Port > 65535 {
		return nil, validationErrorf("Port %d is not in 1-65535", spec.Port)
	}
	if spec.Protocol == "" {
		spec.Protocol = "HTTP"
	}
	if spec.Protocol != "HTTP" && spec.Protocol != "HTTPS" && spec.Protocol != "TCP" {
		return nil, validationErrorf("Protocol '%s' is not supported by albemu; use HTTP, HTTPS or TCP", spec.Protocol)
	}
	if spec.VpcID == "" {
		spec.VpcID = defaultVpcID
	}
	hc := spec.HealthCheck.withDefaults(e.opts.DefaultHealthCheck)
	if err := hc.validate(); err != nil {
		return nil, err
	}
	delay, err := e.resolveDelay(spec.DeregistrationDelay)
	if err != nil {
		return nil, err
	}
	for _, tg := range e.order {
		if tg.name != spec.Name {
			continue
		}
		if tg.port == spec.Port && tg.protocol == spec.Protocol && tg.vpcID == spec.VpcID {
			return tg, nil
		}
		return nil, &APIError{Code: CodeDuplicateTargetGroupName, Message: "A target group with the same name '" + spec.Name + "' exists, but with different settings"}
	}
	tg := &targetGroup{
		arn:        fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%s", e.opts.Region, e.opts.AccountID, spec.Name, randomHex(8)),
		name:       spec.Name,
		protocol:   spec.Protocol,
		vpcID:      spec.VpcID,
		port:       spec.Port,
		lbArns:     slices.Clone(spec.LoadBalancerArns),
		tags:       maps.Clone(spec.Tags),
		hc:         hc,
		hcProtocol: spec.Protocol,
		hcChanged:  make(chan struct{}),
		delay:      delay,
		attrs:      attributeDefaults(spec.Protocol),
		targets:    map[Target]*registration{},
		routes:     make([][]*route, len(e.nodes)),
		next:       make([]int, len(e.nodes)),
	}
	e.groups[tg.arn] = tg
	e.order = append(e.order, tg)
	e.notifyLocked()
	return tg, nil
}

// resolveDelay maps the Go API's delay convention (0 default, Immediate
// none) to the effective delay.
func (e *Emulator) resolveDelay(d time.Duration) (time.Duration, *APIError) {
	switch {
	case d == 0:
		d = e.opts.DefaultDeregistrationDelay
	case d < 0:
		d = 0
	}
	if d > maxDeregistrationDelay {
		return 0, validationErrorf("'%s' must be between 0 and 3600 seconds", attrDeregistrationKey)
	}
	return d, nil
}

// SetDeregistrationDelay changes deregistration_delay.timeout_seconds, with
// sub-second precision; zero or Immediate means none. Targets already
// draining keep the delay they started with.
func (e *Emulator) SetDeregistrationDelay(tgARN string, d time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(tgARN)
	if err != nil {
		return err
	}
	if d > maxDeregistrationDelay {
		return validationErrorf("'%s' must be between 0 and 3600 seconds", attrDeregistrationKey)
	}
	tg.delay = max(d, 0)
	e.notifyLocked()
	return nil
}

// SetHealthCheck replaces a target group's health-check settings; zero
// fields take the defaults. Running health checks switch to them at once.
func (e *Emulator) SetHealthCheck(tgARN string, hc HealthCheck) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(tgARN)
	if err != nil {
		return err
	}
	hc = hc.withDefaults(e.opts.DefaultHealthCheck)
	if err := hc.validate(); err != nil {
		return err
	}
	tg.setHealthCheck(hc)
	e.notifyLocked()
	return nil
}

// setHealthCheck applies new settings and has the probes start a fresh
// check with them rather than finish a long interval under the old ones.
func (tg *targetGroup) setHealthCheck(hc HealthCheck) {
	tg.hc = hc
	close(tg.hcChanged)
	tg.hcChanged = make(chan struct{})
}

// groupLocked finds a target group; the error is the API's.
func (e *Emulator) groupLocked(arn string) (*targetGroup, *APIError) {
	tg, ok := e.groups[arn]
	if !ok {
		return nil, errTargetGroupNotFound()
	}
	return tg, nil
}

// attributes returns every attribute, sorted by key as AWS does.
func (tg *targetGroup) attributes() []keyValue {
	all := maps.Clone(tg.attrs)
	all[attrDeregistrationKey] = strconv.FormatInt(ceilSeconds(tg.delay), 10)
	return sortedKeyValues(all)
}

// setAttributes validates and applies ModifyTargetGroupAttributes input all
// or nothing.
func (tg *targetGroup) setAttributes(kvs []keyValue) *APIError {
	delay := tg.delay
	for _, kv := range kvs {
		if kv.Key == attrDeregistrationKey {
			secs, err := strconv.Atoi(kv.Value)
			if err != nil || secs < 0 || secs > 3600 {
				return validationErrorf("'%s' must be an integer between 0 and 3600, got '%s'", attrDeregistrationKey, kv.Value)
			}
			delay = time.Duration(secs) * time.Second
			continue
		}
		if _, ok := tg.attrs[kv.Key]; !ok {
			return validationErrorf("Target group attribute key '%s' is not recognized", kv.Key)
		}
	}
	tg.delay = delay
	for _, kv := range kvs {
		if kv.Key != attrDeregistrationKey {
			tg.attrs[kv.Key] = kv.Value
		}
	}
	return nil
}

type keyValue struct{ Key, Value string }

func sortedKeyValues(m map[string]string) []keyValue {
	out := make([]keyValue, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, keyValue{k, m[k]})
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
