package albemu

func (e *Emulator) apiRegisterTargets(f queryForm) (any, *APIError) {
	return e.changeTargets(f, (*Emulator).registerLocked)
}

func (e *Emulator) apiDeregisterTargets(f queryForm) (any, *APIError) {
	return e.changeTargets(f, (*Emulator).deregisterLocked)
}

func (e *Emulator) changeTargets(f queryForm, change func(*Emulator, *targetGroup, []Target) *APIError) (any, *APIError) {
	arn, err := f.required("TargetGroupArn")
	if err != nil {
		return nil, err
	}
	targets, err := f.targets("Targets")
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(arn)
	if err != nil {
		return nil, err
	}
	if err := change(e, tg, targets); err != nil {
		return nil, err
	}
	return xmlEmpty{}, nil
}

func (e *Emulator) apiDescribeTargetHealth(f queryForm) (any, *APIError) {
	arn, err := f.required("TargetGroupArn")
	if err != nil {
		return nil, err
	}
	targets, err := f.targets("Targets")
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tg, err := e.groupLocked(arn)
	if err != nil {
		return nil, err
	}
	health, err := e.describeHealthLocked(tg, targets)
	if err != nil {
		return nil, err
	}
	var res xmlTargetHealthResult
	for _, th := range health {
		res.TargetHealthDescriptions.Members = append(res.TargetHealthDescriptions.Members, healthToXML(th))
	}
	return res, nil
}
