package albemu

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
)

const xmlNamespace = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

// xmlList renders a Query protocol list: the wrapper element, present even
// when empty, around <member> elements.
type xmlList[T any] struct {
	Members []T `xml:"member"`
}

func listOf[T any](items ...T) xmlList[T] { return xmlList[T]{Members: items} }

type xmlMatcher struct {
	HttpCode string
}

type xmlTargetGroup struct {
	TargetGroupArn             string
	TargetGroupName            string
	Protocol                   string
	ProtocolVersion            string
	Port                       int32
	VpcId                      string
	HealthCheckProtocol        string
	HealthCheckPort            string
	HealthCheckEnabled         bool
	HealthCheckIntervalSeconds int64
	HealthCheckTimeoutSeconds  int64
	HealthyThresholdCount      int
	UnhealthyThresholdCount    int
	HealthCheckPath            string
	Matcher                    xmlMatcher
	LoadBalancerArns           xmlList[string]
	TargetType                 string
	IpAddressType              string
}

type xmlTargetGroupsResult struct {
	TargetGroups xmlList[xmlTargetGroup]
	NextMarker   string `xml:",omitempty"`
}

type xmlAttributesResult struct {
	Attributes xmlList[keyValue]
}

type xmlTagDescription struct {
	ResourceArn string
	Tags        xmlList[keyValue]
}

type xmlTagsResult struct {
	TagDescriptions xmlList[xmlTagDescription]
}

type xmlTarget struct {
	Id   string
	Port int32
}

type xmlTargetHealth struct {
	State       string
	Reason      string `xml:",omitempty"`
	Description string `xml:",omitempty"`
}

type xmlTargetHealthDescription struct {
	Target          xmlTarget
	HealthCheckPort string
	TargetHealth    xmlTargetHealth
}

type xmlTargetHealthResult struct {
	TargetHealthDescriptions xmlList[xmlTargetHealthDescription]
}

// xmlEmpty is the result of operations without output fields; the SDK
// still expects the <OpResult> element.
type xmlEmpty struct{}

type xmlErrorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Error     xmlErrorBody
	RequestId string
}

type xmlErrorBody struct {
	Type    string
	Code    string
	Message string
}

func (tg *targetGroup) toXML() xmlTargetGroup {
	return xmlTargetGroup{
		TargetGroupArn:             tg.arn,
		TargetGroupName:            tg.name,
		Protocol:                   tg.protocol,
		ProtocolVersion:            "HTTP1",
		Port:                       tg.port,
		VpcId:                      tg.vpcID,
		HealthCheckProtocol:        tg.hcProtocol,
		HealthCheckPort:            tg.hc.Port,
		HealthCheckEnabled:         true,
		HealthCheckIntervalSeconds: ceilSeconds(tg.hc.Interval),
		HealthCheckTimeoutSeconds:  ceilSeconds(tg.hc.Timeout),
		HealthyThresholdCount:      tg.hc.HealthyThreshold,
		UnhealthyThresholdCount:    tg.hc.UnhealthyThreshold,
		HealthCheckPath:            tg.hc.Path,
		Matcher:                    xmlMatcher{HttpCode: tg.hc.Matcher},
		LoadBalancerArns:           listOf(tg.lbArns...),
		TargetType:                 "ip",
		IpAddressType:              "ipv4",
	}
}

func healthToXML(th TargetHealth) xmlTargetHealthDescription {
	return xmlTargetHealthDescription{
		Target:          xmlTarget{Id: th.Target.ID, Port: th.Target.Port},
		HealthCheckPort: th.HealthCheckPort,
		TargetHealth:    xmlTargetHealth{State: th.State, Reason: th.Reason, Description: th.Description},
	}
}

// encodeResult renders <ActionResponse><ActionResult>...</ActionResult>
// <ResponseMetadata/></ActionResponse>.
func encodeResult(action, requestID string, result any) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `<%sResponse xmlns="%s">`, action, xmlNamespace)
	enc := xml.NewEncoder(&buf)
	if err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	fmt.Fprintf(&buf, `<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`, requestID, action)
	return buf.Bytes(), nil
}

func encodeError(apiErr *APIError, requestID string) []byte {
	body, err := xml.Marshal(xmlErrorResponse{
		Xmlns:     xmlNamespace,
		Error:     xmlErrorBody{Type: apiErr.faultType(), Code: apiErr.Code, Message: apiErr.Message},
		RequestId: requestID,
	})
	if err != nil {
		// Only strings go in; encoding cannot fail.
		panic(err)
	}
	return body
}

func writeXML(w http.ResponseWriter, status int, requestID string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("x-amzn-RequestId", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
