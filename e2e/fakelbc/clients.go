package fakelbc

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// UserAgentPrefix starts the User-Agent of every AWS call the controller
// makes; UserAgent is the whole of it. The real controller replaces the
// SDK's User-Agent outright with "elbv2.k8s.aws/<version>"
// (pkg/aws.overrideUserAgentMiddleware), so that is how its calls are told
// apart: the SDK's "app/..." suffix never reaches the wire.
const (
	UserAgentPrefix = "elbv2.k8s.aws/"
	UserAgent       = UserAgentPrefix + "v3.5.0"
)

// Clients are an ELBv2 and an EC2 client for the emulator at url, sending
// the controller's User-Agent.
func Clients(url string) (*awselbv2.Client, *ec2.Client) {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEMULATOR", "emulator-secret", ""),
		APIOptions:  []func(*middleware.Stack) error{overrideUserAgent},
	}
	return awselbv2.NewFromConfig(cfg, func(o *awselbv2.Options) { o.BaseEndpoint = aws.String(url) }),
		ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(url) })
}

func overrideUserAgent(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("OverrideUserAgent",
		func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				req.Header.Set("User-Agent", UserAgent)
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
}
