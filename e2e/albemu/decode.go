package albemu

import "time"

// request is every parameter an action may take, decoded. Each action
// lists the parameters it reads in its table entry (see actions); a field
// it does not list stays zero.
type request struct {
	TargetGroupArn, Name, Protocol, VpcID, TargetType string
	LoadBalancerArn, Marker                           string
	Port, PageSize                                    optInt
	Targets                                           []Target
	Zones                                             []string // Targets' AvailabilityZone, "" where absent
	TargetGroupArns, Names, ResourceArns              []string
	Tags, Attributes                                  []keyValue
	HealthCheck                                       healthCheckParams
}

// optInt is an integer parameter that may be absent.
type optInt struct {
	v   int
	set bool
}

// healthCheckParams are the health-check parameters present in a
// request, to lay over a target group's settings.
type healthCheckParams struct {
	Enabled, Protocol, Path, Port, Matcher string
	Interval, Timeout, Healthy, Unhealthy  optInt
}

// param decodes one query parameter into a request.
type param func(f queryForm, r *request) *APIError

func required(key string, dst func(*request) *string) param {
	return func(f queryForm, r *request) *APIError {
		v, err := f.required(key)
		*dst(r) = v
		return err
	}
}

func optional(key string, dst func(*request) *string) param {
	return func(f queryForm, r *request) *APIError {
		*dst(r) = f.get(key)
		return nil
	}
}

func intParam(key string, lo, hi int, dst func(*request) *optInt) param {
	return func(f queryForm, r *request) *APIError {
		v, ok, err := f.intIn(key, lo, hi)
		*dst(r) = optInt{v, ok}
		return err
	}
}

func listParam(key string, dst func(*request) *[]string) param {
	return func(f queryForm, r *request) (err *APIError) {
		*dst(r), err = f.list(key)
		return err
	}
}

func targetsParam(key string) param {
	return func(f queryForm, r *request) (err *APIError) {
		r.Targets, err = f.targets(key)
		return err
	}
}

func zonesParam(key string) param {
	return func(f queryForm, r *request) *APIError {
		items, err := f.structs(key)
		for _, it := range items {
			r.Zones = append(r.Zones, it["AvailabilityZone"])
		}
		return err
	}
}

func keyValuesParam(key string, dst func(*request) *[]keyValue) param {
	return func(f queryForm, r *request) (err *APIError) {
		*dst(r), err = f.keyValues(key)
		return err
	}
}

// Parameters shared by several actions.
var (
	tgArnParam = required("TargetGroupArn", func(r *request) *string { return &r.TargetGroupArn })
	// healthCheckParamList are CreateTargetGroup's and ModifyTargetGroup's
	// health-check parameters, within AWS's ranges.
	healthCheckParamList = []param{
		optional("HealthCheckEnabled", func(r *request) *string { return &r.HealthCheck.Enabled }),
		optional("HealthCheckProtocol", func(r *request) *string { return &r.HealthCheck.Protocol }),
		optional("HealthCheckPath", func(r *request) *string { return &r.HealthCheck.Path }),
		optional("HealthCheckPort", func(r *request) *string { return &r.HealthCheck.Port }),
		optional("Matcher.HttpCode", func(r *request) *string { return &r.HealthCheck.Matcher }),
		intParam("HealthCheckIntervalSeconds", 5, 300, func(r *request) *optInt { return &r.HealthCheck.Interval }),
		intParam("HealthCheckTimeoutSeconds", 2, 120, func(r *request) *optInt { return &r.HealthCheck.Timeout }),
		intParam("HealthyThresholdCount", 2, 10, func(r *request) *optInt { return &r.HealthCheck.Healthy }),
		intParam("UnhealthyThresholdCount", 2, 10, func(r *request) *optInt { return &r.HealthCheck.Unhealthy }),
	}
)

// decode reads the parameters an action takes, in order, stopping at the
// first that is invalid.
func decode(f queryForm, params []param) (*request, *APIError) {
	r := &request{}
	for _, p := range params {
		if err := p(f, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// apply lays the health-check parameters present over hc, for a target
// group of protocol, and returns HealthCheckProtocol if given.
func (p healthCheckParams) apply(hc *HealthCheck, protocol string) (string, *APIError) {
	if p.Enabled != "" && p.Enabled != "true" {
		return "", validationErrorf("Health checks cannot be disabled for target groups with target type 'ip'")
	}
	switch {
	case p.Protocol == "" || p.Protocol == "HTTP" || p.Protocol == "HTTPS":
	case p.Protocol == "TCP" && protocol == "TCP":
	default:
		return "", validationErrorf("Health check protocol '%s' is not supported for a %s target group", p.Protocol, protocol)
	}
	for _, s := range []struct {
		v   string
		dst *string
	}{{p.Path, &hc.Path}, {p.Port, &hc.Port}, {p.Matcher, &hc.Matcher}} {
		if s.v != "" {
			*s.dst = s.v
		}
	}
	seconds := func(o optInt, dst *time.Duration) {
		if o.set {
			*dst = time.Duration(o.v) * time.Second
		}
	}
	seconds(p.Interval, &hc.Interval)
	seconds(p.Timeout, &hc.Timeout)
	for _, c := range []struct {
		o   optInt
		dst *int
	}{{p.Healthy, &hc.HealthyThreshold}, {p.Unhealthy, &hc.UnhealthyThreshold}} {
		if c.o.set {
			*c.dst = c.o.v
		}
	}
	return p.Protocol, nil
}
