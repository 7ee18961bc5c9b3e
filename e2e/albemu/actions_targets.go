package albemu

func (e *Emulator) apiRegisterTargets(r *request) (any, *APIError) {
	return e.changeTargets(r, (*Emulator).registerLocked)
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
