package lbcreact

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/albdrain/albdrain/e2e/albemu"
	"github.com/albdrain/albdrain/e2e/fakelbc"
	"github.com/albdrain/albdrain/e2e/ports"
	"github.com/albdrain/albdrain/e2e/reaper"
	"github.com/albdrain/albdrain/e2e/testcert"
)

// Real runs the AWS Load Balancer Controller built at bin, with the
// kubeconfig given, writing its files and log under dir. Its webhooks
// serve, but no admission configuration names them; its Service,
// Gateway, Shield and WAF parts are off, as they call services the
// emulator does not serve.
func Real(bin, dir string, kubeconfig []byte) Controller {
	return Controller{Name: "real", Start: func(ctx context.Context, url string) (func() error, error) {
		kc := filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kc, kubeconfig, 0o600); err != nil {
			return nil, err
		}
		certs := filepath.Join(dir, "certs")
		if err := testcert.WriteServingCert(certs, net.IPv4(127, 0, 0, 1)); err != nil {
			return nil, err
		}
		var p [2]int
		for i := range p {
			var err error
			if p[i], err = ports.Reserve(); err != nil {
				return nil, err
			}
		}
		logf, err := os.CreateTemp(dir, "controller-*.log")
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin,
			"--kubeconfig="+kc,
			"--cluster-name="+fakelbc.DefaultClusterName,
			"--aws-region=us-east-1",
			"--aws-vpc-id="+albemu.DefaultVPCID,
			"--aws-api-endpoints=EC2="+url+",Elastic Load Balancing v2="+url,
			"--aws-max-retries=0",
			"--enable-leader-election=false",
			"--metrics-bind-addr=0",
			"--health-probe-bind-addr=127.0.0.1:"+strconv.Itoa(p[0]),
			"--webhook-bind-port="+strconv.Itoa(p[1]),
			"--webhook-cert-dir="+certs,
			"--enable-shield=false", "--enable-waf=false", "--enable-wafv2=false",
			"--enable-endpoint-slices=true",
			"--feature-gates=EnableServiceController=false,ALBGatewayAPI=false,NLBGatewayAPI=false,EnableRGTAPI=false",
		)
		cmd.Env = append(os.Environ(),
			"AWS_ACCESS_KEY_ID=AKIDEMULATOR", "AWS_SECRET_ACCESS_KEY=emulator-secret",
			"AWS_EC2_METADATA_DISABLED=true")
		cmd.Stdout, cmd.Stderr = logf, logf
		wait, err := reaper.Start(cmd)
		if err != nil {
			logf.Close()
			return nil, err
		}
		exited := make(chan error, 1)
		go func() { exited <- wait(); logf.Close() }()
		return func() error {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
					return nil
				}
				return err
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				return fmt.Errorf("controller ignored SIGTERM for 30s; killed (log: %s)", logf.Name())
			}
		}, nil
	}}
}

// StandIn runs the harness's stand-in (e2e/fakelbc) in this process with
// its default reaction lag, reading EndpointSlices as the real controller
// does.
func StandIn(cfg *rest.Config) Controller {
	return Controller{Name: "standin", Start: func(ctx context.Context, url string) (func() error, error) {
		elb, ec2 := fakelbc.Clients(url)
		c, err := fakelbc.Start(ctx, cfg, fakelbc.Options{
			ELBv2: elb, EC2: ec2, EndpointSlices: true,
			MinLag: fakelbc.DefaultMinLag, MaxLag: fakelbc.DefaultMaxLag,
		})
		if err != nil {
			return nil, err
		}
		return func() error { c.Stop(); return nil }, nil
	}}
}
