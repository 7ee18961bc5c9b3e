package albemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// newFaultsFixture is an emulator with one target group and its ARN.
func newFaultsFixture(t *testing.T) (*albemu.Emulator, string) {
	t.Helper()
	emu := albemu.NewForTest(t, albemu.Options{})
	arn, err := emu.CreateTargetGroup(albemu.TargetGroupSpec{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	return emu, arn
}

func describeHealth(ctx context.Context, client *awselbv2.Client, arn string) error {
	_, err := client.DescribeTargetHealth(ctx, &awselbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	return err
}

func TestSDKRetriesThrottling(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	emu, arn := newFaultsFixture(t)
	emu.SetFaults(albemu.Faults{ThrottleFraction: 1})
	// The retryer's backoff is the hook that lifts the throttling, so the
	// retry deterministically finds the API healthy again.
	client := newClient(t, emu, 3, func(int, error) (time.Duration, error) {
		emu.ClearFaults()
		return 0, nil
	})

	if err := describeHealth(ctx, client, arn); err != nil {
		t.Fatalf("throttled once then fine: %v", err)
	}
	calls := emu.Calls()
	if len(calls) != 2 || calls[0].ErrorCode != albemu.CodeThrottling || calls[0].Status != http.StatusBadRequest || calls[1].Status != http.StatusOK {
		t.Fatalf("calls %+v, want one throttled attempt and one success", calls)
	}
}

func TestSDKSurfacesPersistentThrottling(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	emu, arn := newFaultsFixture(t)
	emu.SetFaults(albemu.Faults{ThrottleFraction: 1})
	client := newClient(t, emu, 3, nil)

	err := describeHealth(ctx, client, arn)
	if errorCode(err) != albemu.CodeThrottling || !strings.Contains(err.Error(), "Rate exceeded") {
		t.Fatalf("got %v, want Throttling: Rate exceeded", err)
	}
	if n := emu.CallCount("DescribeTargetHealth"); n != 3 {
		t.Fatalf("emulator saw %d calls, want the retryer's 3 attempts", n)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     albemu.Faults
		calls      int // SDK calls made, one attempt each
		wantCode   string
		wantStatus int // of the last call as the emulator logged it
	}{
		{name: "token bucket", faults: albemu.Faults{RatePerSecond: 0.001, Burst: 2}, calls: 3, wantCode: albemu.CodeThrottling, wantStatus: 400},
		{name: "internal failure", faults: albemu.Faults{ErrorFraction: 1}, calls: 1, wantCode: albemu.CodeInternalFailure, wantStatus: 500},
		{name: "service unavailable", faults: albemu.Faults{ErrorFraction: 1, ErrorCode: albemu.CodeServiceUnavailable}, calls: 1, wantCode: albemu.CodeServiceUnavailable, wantStatus: 503},
		{name: "outage", faults: albemu.Faults{Outage: albemu.OutageUnavailable}, calls: 1, wantCode: albemu.CodeServiceUnavailable, wantStatus: 503},
		{name: "dropped connections", faults: albemu.Faults{Outage: albemu.OutageDrop}, calls: 1, wantStatus: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			emu, arn := newFaultsFixture(t)
			client := newClient(t, emu, 1, nil)
			emu.SetFaults(tc.faults)

			var err error
			for i := range tc.calls {
				err = describeHealth(ctx, client, arn)
				if i < tc.calls-1 && err != nil {
					t.Fatalf("call %d inside the burst: %v", i+1, err)
				}
			}
			if err == nil {
				t.Fatal("last call succeeded, want it to fail")
			}
			if tc.wantCode != "" && errorCode(err) != tc.wantCode {
				t.Fatalf("got %v, want code %s", err, tc.wantCode)
			}
			calls := emu.Calls()
			if last := calls[len(calls)-1]; last.Status != tc.wantStatus || last.ErrorCode != tc.wantCode {
				t.Fatalf("logged %+v, want status %d code %q", last, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

func TestLatencyDelaysAnswers(t *testing.T) {
	t.Parallel()
	emu, arn := newFaultsFixture(t)
	client := newClient(t, emu, 1, nil)
	emu.SetFaults(albemu.Faults{Latency: time.Hour})

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := describeHealth(ctx, client, arn); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the caller's deadline to expire first", err)
	}
}

func TestActionFaultsOverrideGlobal(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	emu, arn := newFaultsFixture(t)
	client := newClient(t, emu, 1, nil)
	emu.SetFaults(albemu.Faults{ThrottleFraction: 1})
	emu.SetActionFaults("DescribeTargetHealth", albemu.Faults{})

	if err := describeHealth(ctx, client, arn); err != nil {
		t.Fatalf("action without faults: %v", err)
	}
	_, err := client.DescribeTags(ctx, &awselbv2.DescribeTagsInput{ResourceArns: []string{arn}})
	if errorCode(err) != albemu.CodeThrottling {
		t.Fatalf("other action: %v, want the global throttling", err)
	}
}

func TestAdminEndpointSetsFaults(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	emu, arn := newFaultsFixture(t)
	client := newClient(t, emu, 1, nil)

	body := `{"all":{},"actions":{"DescribeTargetHealth":{"throttleFraction":1,"latency":"1ms"}}}`
	if status, resp := admin(t, http.MethodPut, emu.URL()+"/_emu/faults", body); status != http.StatusOK || !strings.Contains(resp, `"throttleFraction": 1`) {
		t.Fatalf("PUT faults: %d %s", status, resp)
	}
	if err := describeHealth(ctx, client, arn); errorCode(err) != albemu.CodeThrottling {
		t.Fatalf("got %v, want Throttling set over HTTP", err)
	}
	if status, _ := admin(t, http.MethodDelete, emu.URL()+"/_emu/faults", ""); status != http.StatusNoContent {
		t.Fatalf("DELETE faults: %d", status)
	}
	if err := describeHealth(ctx, client, arn); err != nil {
		t.Fatalf("after clearing: %v", err)
	}

	_, resp := admin(t, http.MethodGet, emu.URL()+"/_emu/calls", "")
	var calls []albemu.Call
	if err := json.Unmarshal([]byte(resp), &calls); err != nil || len(calls) != 2 || calls[0].ErrorCode != albemu.CodeThrottling {
		t.Fatalf("calls over HTTP: %v %s", err, resp)
	}
	if status, resp := admin(t, http.MethodPut, emu.URL()+"/_emu/faults", `{"all":{"outage":"sideways"}}`); status != http.StatusBadRequest {
		t.Fatalf("bad outage accepted: %d %s", status, resp)
	}
}

func admin(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestWireFormat checks what the SDK does not: headers, the empty result
// element and the error document, as a non-Go client would see them.
func TestWireFormat(t *testing.T) {
	t.Parallel()
	emu, arn := newFaultsFixture(t)
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantBody   []string
	}{
		{
			name:       "empty result",
			form:       url.Values{"Action": {"DescribeTargetHealth"}, "Version": {"2015-12-01"}, "TargetGroupArn": {arn}},
			wantStatus: 200,
			wantBody: []string{
				`<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">`,
				`<DescribeTargetHealthResult><TargetHealthDescriptions></TargetHealthDescriptions></DescribeTargetHealthResult>`,
				`<ResponseMetadata><RequestId>`,
			},
		},
		{
			name:       "no output fields",
			form:       url.Values{"Action": {"DeregisterTargets"}, "TargetGroupArn": {arn}, "Targets.member.1.Id": {"127.0.0.1"}},
			wantStatus: 200,
			wantBody:   []string{`<DeregisterTargetsResult></DeregisterTargetsResult>`},
		},
		{
			name:       "unknown action",
			form:       url.Values{"Action": {"DeleteEverything"}},
			wantStatus: 400,
			wantBody:   []string{`<ErrorResponse xmlns=`, `<Type>Sender</Type><Code>InvalidAction</Code>`, `<RequestId>`},
		},
		{
			name:       "missing action",
			form:       url.Values{},
			wantStatus: 400,
			wantBody:   []string{`<Code>MissingAction</Code>`},
		},
		{
			name:       "missing parameter",
			form:       url.Values{"Action": {"DescribeTargetHealth"}},
			wantStatus: 400,
			wantBody:   []string{`<Code>ValidationError</Code>`, `targetGroupArn`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.PostForm(emu.URL()+"/", tc.form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Content-Type") != "text/xml" || resp.Header.Get("x-amzn-RequestId") == "" {
				t.Fatalf("status %d headers %v, want %d, text/xml and a request id", resp.StatusCode, resp.Header, tc.wantStatus)
			}
			for _, want := range tc.wantBody {
				if !strings.Contains(string(b), want) {
					t.Fatalf("body %s\nlacks %s", b, want)
				}
			}
		})
	}
}
