package fakelbc

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// network is the EC2 side of a reconcile: the cluster's endpoint security
// groups and the VPC's CIDR blocks, each fetched until it succeeds once.
type network struct {
	ec2          EC2API
	cluster, vpc string

	mu        sync.Mutex
	sgFetched bool
	vpcCIDRs  []netip.Prefix // nil until fetched
}

// endpointSGs is networking.defaultNetworkingManager.fetchEndpointSGs,
// reached on every reconcile through reconcileWithIngressPermissionsPerSG's
// garbage collection: DescribeSecurityGroups by the cluster tag and the
// VPC, until it succeeds once. A binding without spec.networking needs no
// rules, so only the call matters here.
func (n *network) endpointSGs(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sgFetched {
		return nil
	}
	_, err := n.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:kubernetes.io/cluster/" + n.cluster), Values: []string{"owned", "shared"}},
		{Name: aws.String("vpc-id"), Values: []string{n.vpc}},
	}})
	if err != nil {
		return fmt.Errorf("describe security groups: %w", err)
	}
	n.sgFetched = true
	return nil
}

// outsideVPC is defaultResourceManager.generateOverrideAzFn: it reports
// whether an address lies outside the VPC's associated IPv4 blocks
// (VPCInfo.AssociatedIPv4CIDRs), read once with DescribeVpcs.
func (n *network) outsideVPC(ctx context.Context) (func(netip.Addr) bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.vpcCIDRs == nil {
		out, err := n.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{n.vpc}})
		if err != nil {
			return nil, fmt.Errorf("describe VPC %s: %w", n.vpc, err)
		}
		if len(out.Vpcs) == 0 {
			return nil, fmt.Errorf("describe VPC %s: not found", n.vpc)
		}
		cidrs := []netip.Prefix{}
		for _, a := range out.Vpcs[0].CidrBlockAssociationSet {
			if a.CidrBlockState == nil || a.CidrBlockState.State != ec2types.VpcCidrBlockStateCodeAssociated {
				continue
			}
			p, err := netip.ParsePrefix(aws.ToString(a.CidrBlock))
			if err != nil {
				return nil, fmt.Errorf("VPC %s: %w", n.vpc, err)
			}
			cidrs = append(cidrs, p)
		}
		n.vpcCIDRs = cidrs
	}
	cidrs := n.vpcCIDRs
	return func(ip netip.Addr) bool {
		for _, p := range cidrs {
			if p.Contains(ip) {
				return false
			}
		}
		return true
	}, nil
}
