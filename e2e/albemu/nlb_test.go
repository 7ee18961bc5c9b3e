package albemu_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/albdrain/albdrain/e2e/albemu"
)

// startEcho is a TCP target on its own loopback IP that echoes lines.
func startEcho(t *testing.T, ip string) albemu.Target {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	tt, err := albemu.ParseTarget(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// flow is one client connection through the NLB.
type flow struct {
	c net.Conn
	r *bufio.Reader
}

func dialFlow(t *testing.T, addr string) *flow {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &flow{c: c, r: bufio.NewReader(c)}
}

// echo sends a line and reads it back; an error means the flow is gone.
func (f *flow) echo(ctx context.Context, line string) error {
	deadline, _ := ctx.Deadline()
	_ = f.c.SetDeadline(deadline)
	if _, err := fmt.Fprintln(f.c, line); err != nil {
		return err
	}
	got, err := f.r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echoed %q, want %q", got, line)
	}
	return nil
}

// NLB mode: after the lag new flows stop reaching a deregistered target,
// established ones go on while it drains, and they are closed when the
// delay ends only with connection termination enabled.
func TestNLBFlowsWhileDraining(t *testing.T) {
	t.Parallel()
	for _, terminate := range []bool{false, true} {
		t.Run(fmt.Sprintf("connection_termination=%v", terminate), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			emu := albemu.NewForTest(t, albemu.Options{})
			client := newClient(t, emu, 1, nil)
			created, err := client.CreateTargetGroup(ctx, &awselbv2.CreateTargetGroupInput{
				Name: aws.String("tcp"), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(9000),
				HealthCheckProtocol: types.ProtocolEnumTcp, TargetType: types.TargetTypeEnumIp,
			})
			if err != nil {
				t.Fatal(err)
			}
			arn := aws.ToString(created.TargetGroups[0].TargetGroupArn)
			if err := emu.SetHealthCheck(arn, fastHealth); err != nil {
				t.Fatal(err)
			}
			if _, err := client.ModifyTargetGroupAttributes(ctx, &awselbv2.ModifyTargetGroupAttributesInput{
				TargetGroupArn: aws.String(arn), Attributes: []types.TargetGroupAttribute{
					{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("1")},
					{Key: aws.String(albemu.AttrConnectionTermination), Value: aws.String(fmt.Sprint(terminate))},
				},
			}); err != nil {
				t.Fatal(err)
			}
			ip := map[bool]string{false: "127.0.1.6", true: "127.0.1.7"}[terminate]
			target := startEcho(t, ip)
			if _, err := client.RegisterTargets(ctx, &awselbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{
				{Id: aws.String(target.ID), Port: aws.Int32(target.Port)},
			}}); err != nil {
				t.Fatal(err)
			}
			if err := emu.WaitTargetState(ctx, arn, target, albemu.StateHealthy); err != nil {
				t.Fatal(err)
			}
			ln, err := emu.AddNLBListener(arn, "")
			if err != nil {
				t.Fatal(err)
			}
			established := dialFlow(t, ln.Addr())
			if err := established.echo(ctx, "before"); err != nil {
				t.Fatalf("flow before deregistration: %v", err)
			}

			if _, err := client.DeregisterTargets(ctx, &awselbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{
				{Id: aws.String(target.ID), Port: aws.Int32(target.Port)},
			}}); err != nil {
				t.Fatal(err)
			}
			if err := emu.Wait(ctx, func() bool { s, _ := emu.TargetStop(arn, target); return s.Complete() }); err != nil {
				t.Fatal(err)
			}
			if err := dialFlow(t, ln.Addr()).echo(ctx, "new"); err == nil {
				t.Error("a new flow reached the target after every node stopped routing to it")
			}
			if err := established.echo(ctx, "draining"); err != nil {
				t.Errorf("established flow broken while draining: %v", err)
			}

			if err := emu.WaitTargetState(ctx, arn, target, albemu.StateUnused); err != nil {
				t.Fatal(err)
			}
			if !terminate {
				if err := established.echo(ctx, "after"); err != nil {
					t.Errorf("flow closed after the delay without connection termination: %v", err)
				}
				return
			}
			// The cut is ordered with the delay's end; the close reaches the
			// client as EOF or a reset, which this read waits for.
			if _, err := established.r.ReadString('\n'); err == nil || ctx.Err() != nil {
				t.Errorf("flow still open after the delay with connection termination enabled: %v", err)
			}
		})
	}
}

func TestNLBListenerNeedsTCPGroup(t *testing.T) {
	t.Parallel()
	d := newDataPlane(t, albemu.Options{}, albemu.TargetGroupSpec{})
	if _, err := d.emu.AddNLBListener(d.arn, ""); err == nil {
		t.Fatal("an NLB listener accepted an HTTP target group")
	}
}
