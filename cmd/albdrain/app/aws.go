package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/go-logr/logr"

	"github.com/albdrain/albdrain/drain/watcher/elbv2"
	watchermetrics "github.com/albdrain/albdrain/drain/watcher/metrics"
	"github.com/albdrain/albdrain/internal/contract"
)

// newELBv2 builds the manager's one ELBv2 client, with the call budgets of
// the flags. It fails when AWS cannot work, unless every pod holds in sleep
// mode by default: the chart promises such installs need no AWS
// credentials, and a pod that overrides its mode to wait then falls back
// to the helper's fixed sleep, since every call fails at once.
func newELBv2(ctx context.Context, log logr.Logger, cfg Config, given *aws.Config, m *watchermetrics.Metrics) (*awselbv2.Client, error) {
	d := cfg.Drain
	awsCfg, err := loadAWSConfig(ctx, given, d.AWSRegion)
	if err != nil {
		if cfg.Webhook.Mode != string(contract.ModeSleep) {
			return nil, err
		}
		log.Info("starting without AWS: sleep-mode holds need none; a pod overriding its mode to wait falls back to a fixed sleep", "reason", err.Error())
		awsCfg = withoutAWS(d.AWSRegion, err)
	}
	return elbv2.NewClient(awsCfg, d.ClientOptions(m)), nil
}

// credentialsTimeout bounds the first credentials retrieval at start; the
// chain ends in instance metadata, which answers within a second when it
// is reachable at all.
const credentialsTimeout = 30 * time.Second

// loadAWSConfig resolves the SDK configuration and fails at start when it
// cannot work: without a region or credentials every ELBv2 call would fail,
// every hold would fall back to a fixed sleep, and the manager would still
// report Ready. A given configuration is checked like a resolved one.
func loadAWSConfig(ctx context.Context, given *aws.Config, region string) (aws.Config, error) {
	var cfg aws.Config
	if given != nil {
		cfg = given.Copy()
	} else {
		var err error
		if cfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
		}
	}
	if region != "" {
		cfg.Region = region
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("AWS configuration: no region: set --aws-region (chart value aws.region) or AWS_REGION; the SDK does not read it from instance metadata")
	}
	if cfg.Credentials == nil {
		return aws.Config{}, errors.New("AWS configuration: no credentials provider")
	}
	ctx, cancel := context.WithTimeout(ctx, credentialsTimeout)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: no usable credentials (IRSA, EKS Pod Identity, environment or instance profile): %w", err)
	}
	return cfg, nil
}

// withoutAWS is a configuration whose every call fails at once with why,
// instead of waiting on a credentials chain known to be empty.
func withoutAWS(region string, why error) aws.Config {
	return aws.Config{Region: region, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, why
	})}
}
