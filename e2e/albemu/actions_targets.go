package albemu

import (
	"net/netip"
	"strings"
)

func (e *Emulator) apiRegisterTargets(r *request) (any, *APIError) {
	for i, t := range r.Targets {
		if err := e.checkZone(t.ID, r.Zones[i]); err != nil {
			return nil, err
		}
	}
	return e.changeTargets(r, (*Emulator).registerLocked)
}

// checkZone validates an ip target's AvailabilityZone as ELBv2 does for an
// Application Load Balancer's target group: optional for an address in the
// VPC (which the zone is then detected from), required for one outside it,
// where "all" is the only value allowed.
func (e *Emulator) checkZone(id, zone string) *APIError {
	ip, err := netip.ParseAddr(id)
	if err != nil {
		return nil // resolveTargets refuses it with AWS's message
	}
	switch {
	case e.opts.VPC.inVPC(ip):
		if zone != "" && (zone == "all" || !strings.HasPrefix(zone, e.opts.Region) || len(zone) != len(e.opts.Region)+1) {
			return validationErrorf("The Availability Zone '%s' is not valid for IP address '%s' in the VPC", zone, id)
		}
	case zone == "":
		return validationErrorf("The IP address '%s' is outside the VPC of the target group, so you must specify an Availability Zone", id)
	case zone != "all":
		return validationErrorf("The IP address '%s' is outside the VPC of the target group; the only Availability Zone supported is 'all'", id)
	}
	return nil
}

func (e *Emulator) apiDeregisterTargets(r *request) (any, *APIError) {
	return e.changeTargets(r, (*Emulator).deregisterLocked)
}

func (e *Emulator) changeTargets(r *request, change func(*Emulator, *targetGroup, []Target) *APIError) (any, *APIError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(r.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	if err := change(e, tg, r.Targets); err != nil {
		return nil, err
	}
	return xmlEmpty{}, nil
}

func (e *Emulator) apiDescribeTargetHealth(r *request) (any, *APIError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(r.TargetGroupArn)
	if err != nil {
		return nil, err
	}
	health, err := e.describeHealthLocked(tg, r.Targets)
	if err != nil {
		return nil, err
	}
	var res xmlTargetHealthResult
	for _, th := range health {
		res.TargetHealthDescriptions.Members = append(res.TargetHealthDescriptions.Members, healthToXML(th))
	}
	return res, nil
}
