package lbc

import (
	_ "embed"
)

// CRDYAML is a CustomResourceDefinition for TargetGroupBinding with the fields
// albdrain reads, for test clusters that have no load balancer controller. In a
// real cluster the controller installs its own, complete definition.
//
//go:embed crd.yaml
var CRDYAML []byte

// GatewayCRDYAML defines, likewise, the LBC's TargetGroupConfiguration and
// LoadBalancerConfiguration (two YAML documents).
//
//go:embed gateway_crd.yaml
var GatewayCRDYAML []byte
