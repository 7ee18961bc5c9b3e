package albemu_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/e2e/albemu"
)

func newEC2(emu *albemu.Emulator) *ec2.Client {
	return ec2.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("id", "secret", "")},
		func(o *ec2.Options) { o.BaseEndpoint = aws.String(emu.URL()) })
}

// TestEC2Calls drives the two EC2 calls the load balancer controller makes
// through the unmodified SDK: DescribeSecurityGroups with the filters of
// networking.defaultNetworkingManager.fetchEndpointSGsFromAWS (cluster tag
// owned/shared, VPC), and DescribeVpcs as
// networking.defaultVPCInfoProvider.fetchVPCInfoFromAWS reads it, whose
// VPCInfo.AssociatedIPv4CIDRs keeps only associated blocks.
func TestEC2Calls(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const tag = "kubernetes.io/cluster/demo"
	emu := albemu.NewForTest(t, albemu.Options{
		VPC: &albemu.VPC{ID: "vpc-1", CIDRs: []albemu.CIDRBlock{
			{Prefix: netip.MustParsePrefix("10.0.0.0/16"), State: "associated"},
			{Prefix: netip.MustParsePrefix("10.1.0.0/16"), State: "disassociated"},
		}},
		SecurityGroups: []albemu.SecurityGroup{
			{ID: "sg-owned", VpcID: "vpc-1", Tags: map[string]string{tag: "owned"}},
			{ID: "sg-shared", VpcID: "vpc-1", Tags: map[string]string{tag: "shared"}},
			{ID: "sg-other-vpc", VpcID: "vpc-2", Tags: map[string]string{tag: "owned"}},
			{ID: "sg-untagged", VpcID: "vpc-1"},
		},
	})
	c := newEC2(emu)

	sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + tag), Values: []string{"owned", "shared"}},
		{Name: aws.String("vpc-id"), Values: []string{"vpc-1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, sg := range sgs.SecurityGroups {
		ids = append(ids, aws.ToString(sg.GroupId))
	}
	if diff := cmp.Diff([]string{"sg-owned", "sg-shared"}, ids); diff != "" {
		t.Errorf("security groups (-want +got):\n%s", diff)
	}

	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-1"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ec2types.VpcCidrBlockStateCode{}
	for _, a := range vpcs.Vpcs[0].CidrBlockAssociationSet {
		got[aws.ToString(a.CidrBlock)] = a.CidrBlockState.State
	}
	want := map[string]ec2types.VpcCidrBlockStateCode{"10.0.0.0/16": ec2types.VpcCidrBlockStateCodeAssociated, "10.1.0.0/16": ec2types.VpcCidrBlockStateCodeDisassociated}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CIDR associations (-want +got):\n%s", diff)
	}

	_, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-9"}})
	if code := errorCode(err); code != "InvalidVpcID.NotFound" {
		t.Errorf("unknown VPC: error %v, want InvalidVpcID.NotFound", err)
	}

	// The fault for a role without the EC2 permissions.
	emu.SetActionFaults("DescribeSecurityGroups", albemu.Faults{Denied: true})
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if code := errorCode(err); code != albemu.CodeUnauthorizedOperation {
		t.Errorf("denied: error %v, want %s", err, albemu.CodeUnauthorizedOperation)
	}
}

// TestRegisterTargetsZones checks the availability-zone rules that
// targetgroupbinding.defaultResourceManager.registerPodEndpoints relies on:
// an address in the VPC needs no zone, one outside it needs "all"
// (generateOverrideAzFn), and leaving the zone out is the ValidationError
// that isAZValidationError recognises.
func TestRegisterTargetsZones(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	emu := albemu.NewForTest(t, albemu.Options{AllowNonLoopbackTargets: true, VPC: &albemu.VPC{ID: "vpc-1", CIDRs: []albemu.CIDRBlock{
		{Prefix: netip.MustParsePrefix("10.0.0.0/16"), State: "associated"},
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), State: "disassociated"},
	}}})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, emu, 1, nil)
	for _, tc := range []struct {
		ip, zone string
		wantErr  string // substring of the message, "" for success
	}{
		{ip: "10.0.0.1"},
		{ip: "10.0.0.2", zone: "us-east-1a"},
		{ip: "10.0.0.3", zone: "all", wantErr: "not valid"},
		{ip: "10.1.0.1", wantErr: "you must specify an Availability Zone"}, // disassociated block: outside
		{ip: "192.168.0.1", wantErr: "you must specify an Availability Zone"},
		{ip: "192.168.0.2", zone: "all"},
		{ip: "192.168.0.3", zone: "us-east-1a", wantErr: "only Availability Zone supported is 'all'"},
	} {
		d := elbv2types.TargetDescription{Id: aws.String(tc.ip), Port: aws.Int32(8080)}
		if tc.zone != "" {
			d.AvailabilityZone = aws.String(tc.zone)
		}
		_, err := c.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []elbv2types.TargetDescription{d}})
		var apiErr smithy.APIError
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s zone %q: %v", tc.ip, tc.zone, err)
		case tc.wantErr != "" && (!errors.As(err, &apiErr) || apiErr.ErrorCode() != albemu.CodeValidationError || !strings.Contains(apiErr.ErrorMessage(), tc.wantErr)):
			t.Errorf("%s zone %q: error %v, want ValidationError with %q", tc.ip, tc.zone, err, tc.wantErr)
		}
	}
}
