package albemu

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The two EC2 calls the AWS Load Balancer Controller makes while it
// reconciles a TargetGroupBinding of ip targets: DescribeSecurityGroups
// (the cluster's endpoint security groups, on its first reconcile) and
// DescribeVpcs (the VPC's CIDR blocks, to tell which pod IPs need the
// availability zone "all"). They are served on the same port in EC2's
// own Query dialect: parameters as Name.N, results without a Result
// wrapper, lists as <item>, errors as <Response><Errors>.

// VPC is the emulated VPC the target groups live in.
type VPC struct {
	ID string
	// CIDRs are its IPv4 blocks; only associated ones count as the VPC's.
	CIDRs []CIDRBlock
}

// CIDRBlock is one of a VPC's IPv4 CIDR block associations.
type CIDRBlock struct {
	Prefix netip.Prefix
	// State is EC2's association state: "associated", "associating",
	// "disassociating", "disassociated", "failing" or "failed".
	State string
}

// SecurityGroup is an EC2 security group as DescribeSecurityGroups lists it.
type SecurityGroup struct {
	ID, Name, VpcID string
	Tags            map[string]string
}

const (
	ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"
	// DefaultVPCID is the VPC of an emulator given none.
	DefaultVPCID = "vpc-0e0e0e0e0e0e0e0e0"
	// CodeUnauthorizedOperation is EC2's answer to a call the caller's IAM
	// policy does not allow.
	CodeUnauthorizedOperation = "UnauthorizedOperation"
	codeInvalidParameterValue = "InvalidParameterValue"
	codeInvalidVpcIDNotFound  = "InvalidVpcID.NotFound"
)

// defaultVPC holds every address the emulator can register: loopback,
// 10.0.0.0/8 (pod-like addresses) and the test's own subnet.
func defaultVPC(subnet netip.Prefix) *VPC {
	v := &VPC{ID: DefaultVPCID, CIDRs: []CIDRBlock{
		{netip.MustParsePrefix("10.0.0.0/8"), "associated"},
		{netip.MustParsePrefix("127.0.0.0/8"), "associated"},
	}}
	if subnet.IsValid() {
		v.CIDRs = append(v.CIDRs, CIDRBlock{subnet, "associated"})
	}
	return v
}

// inVPC reports whether ip is in one of the VPC's associated blocks.
func (v *VPC) inVPC(ip netip.Addr) bool {
	return slices.ContainsFunc(v.CIDRs, func(b CIDRBlock) bool { return b.State == "associated" && b.Prefix.Contains(ip) })
}

// ec2Actions are the EC2 operations served, each answering an XML body
// (without the response wrapper) or an error.
var ec2Actions = map[string]func(e *Emulator, f ec2Form) (any, *APIError){
	"DescribeVpcs":           (*Emulator).ec2DescribeVpcs,
	"DescribeSecurityGroups": (*Emulator).ec2DescribeSecurityGroups,
}

// ec2Form reads EC2 Query parameters: lists as Name.N, filters as
// Filter.N.Name and Filter.N.Value.M.
type ec2Form queryForm

func (f ec2Form) list(name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := f[name+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func (f ec2Form) filters() map[string][]string {
	out := map[string][]string{}
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name, ok := f[p+".Name"]
		if !ok {
			return out
		}
		out[name[0]] = append(out[name[0]], f.list(p+".Value")...)
	}
}

func errBadFilter(name string) *APIError {
	return &APIError{Code: codeInvalidParameterValue, Message: fmt.Sprintf("The filter '%s' is invalid", name)}
}

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type ec2CIDRAssociation struct {
	AssociationID string `xml:"associationId"`
	CIDRBlock     string `xml:"cidrBlock"`
	State         string `xml:"cidrBlockState>state"`
}

type ec2VPC struct {
	VpcID        string               `xml:"vpcId"`
	OwnerID      string               `xml:"ownerId"`
	State        string               `xml:"state"`
	CIDRBlock    string               `xml:"cidrBlock"`
	Associations []ec2CIDRAssociation `xml:"cidrBlockAssociationSet>item"`
}

type ec2DescribeVpcsResult struct {
	Vpcs []ec2VPC `xml:"vpcSet>item"`
}

func (e *Emulator) ec2DescribeVpcs(f ec2Form) (any, *APIError) {
	ids := f.list("VpcId")
	for name, vals := range f.filters() {
		if name != "vpc-id" {
			return nil, errBadFilter(name)
		}
		ids = append(ids, vals...)
	}
	v := e.opts.VPC
	for _, id := range ids {
		if id != v.ID {
			return nil, &APIError{Code: codeInvalidVpcIDNotFound, Message: fmt.Sprintf("The vpc ID '%s' does not exist", id)}
		}
	}
	out := ec2VPC{VpcID: v.ID, OwnerID: e.opts.AccountID, State: "available"}
	for i, b := range v.CIDRs {
		if i == 0 {
			out.CIDRBlock = b.Prefix.String()
		}
		out.Associations = append(out.Associations, ec2CIDRAssociation{
			AssociationID: fmt.Sprintf("vpc-cidr-assoc-%017x", i+1), CIDRBlock: b.Prefix.String(), State: b.State,
		})
	}
	return ec2DescribeVpcsResult{Vpcs: []ec2VPC{out}}, nil
}

type ec2SecurityGroup struct {
	OwnerID     string   `xml:"ownerId"`
	GroupID     string   `xml:"groupId"`
	GroupName   string   `xml:"groupName"`
	Description string   `xml:"groupDescription"`
	VpcID       string   `xml:"vpcId"`
	Tags        []ec2Tag `xml:"tagSet>item"`
}

type ec2DescribeSecurityGroupsResult struct {
	Groups []ec2SecurityGroup `xml:"securityGroupInfo>item"`
}

// ec2DescribeSecurityGroups lists the groups matching every filter (any
// value of each), as EC2 does for tag:<key>, tag-key, vpc-id and group-id.
func (e *Emulator) ec2DescribeSecurityGroups(f ec2Form) (any, *APIError) {
	ids := f.list("GroupId")
	filters := f.filters()
	for name := range filters {
		if name != "vpc-id" && name != "group-id" && name != "tag-key" && !strings.HasPrefix(name, "tag:") {
			return nil, errBadFilter(name)
		}
	}
	var res ec2DescribeSecurityGroupsResult
	for _, sg := range e.opts.SecurityGroups {
		if len(ids) > 0 && !slices.Contains(ids, sg.ID) || !sgMatches(sg, filters) {
			continue
		}
		out := ec2SecurityGroup{OwnerID: e.opts.AccountID, GroupID: sg.ID, GroupName: sg.Name, Description: sg.Name, VpcID: sg.VpcID}
		for _, k := range slices.Sorted(maps.Keys(sg.Tags)) {
			out.Tags = append(out.Tags, ec2Tag{k, sg.Tags[k]})
		}
		res.Groups = append(res.Groups, out)
	}
	return res, nil
}

func sgMatches(sg SecurityGroup, filters map[string][]string) bool {
	for name, vals := range filters {
		var ok bool
		switch {
		case name == "vpc-id":
			ok = slices.Contains(vals, sg.VpcID)
		case name == "group-id":
			ok = slices.Contains(vals, sg.ID)
		case name == "tag-key":
			ok = slices.ContainsFunc(vals, func(k string) bool { _, has := sg.Tags[k]; return has })
		default:
			v, has := sg.Tags[strings.TrimPrefix(name, "tag:")]
			ok = has && slices.Contains(vals, v)
		}
		if !ok {
			return false
		}
	}
	return true
}

// serveEC2 answers one EC2 call; faults have been applied as for ELBv2,
// an access denial under EC2's own code.
func (e *Emulator) serveEC2(w http.ResponseWriter, call Call, form queryForm, handle func(*Emulator, ec2Form) (any, *APIError), faults *faultState) {
	result, apiErr := any(nil), faults.verdict()
	if apiErr == nil {
		result, apiErr = handle(e, ec2Form(form))
	}
	var body []byte
	status := http.StatusOK
	if apiErr == nil {
		var err error
		if body, err = encodeEC2Result(call.Action, call.RequestID, result); err != nil {
			apiErr = &APIError{Code: CodeInternalFailure, Message: "encode response: " + err.Error()}
		}
	}
	if apiErr != nil {
		if apiErr.Code == CodeAccessDenied {
			apiErr = &APIError{Code: CodeUnauthorizedOperation, Message: "You are not authorized to perform this operation."}
		}
		status, call.ErrorCode = apiErr.status(), apiErr.Code
		body = encodeEC2Error(apiErr, call.RequestID)
	}
	call.Status = status
	e.recordCall(call)
	writeXML(w, status, call.RequestID, body)
}

func encodeEC2Result(action, requestID string, result any) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `<%sResponse xmlns="%s"><requestId>%s</requestId>`, action, ec2Namespace, requestID)
	inner, err := xml.Marshal(result)
	if err != nil {
		return nil, err
	}
	// The result struct's own element is dropped: EC2 puts its fields
	// straight under the response.
	start, end := bytes.IndexByte(inner, '>')+1, bytes.LastIndexByte(inner, '<')
	if start > 0 && end >= start {
		buf.Write(inner[start:end])
	}
	fmt.Fprintf(&buf, `</%sResponse>`, action)
	return buf.Bytes(), nil
}

type ec2ErrorResponse struct {
	XMLName   xml.Name       `xml:"Response"`
	Errors    []ec2ErrorBody `xml:"Errors>Error"`
	RequestID string         `xml:"RequestID"`
}

type ec2ErrorBody struct {
	Code    string
	Message string
}

func encodeEC2Error(apiErr *APIError, requestID string) []byte {
	body, err := xml.Marshal(ec2ErrorResponse{Errors: []ec2ErrorBody{{apiErr.Code, apiErr.Message}}, RequestID: requestID})
	if err != nil {
		panic(err) // only strings go in
	}
	return body
}
