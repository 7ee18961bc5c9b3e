package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// TestLoadAWSConfigFailsFast checks that a configuration every ELBv2 call
// would fail with is refused at start, with a message naming what is missing,
// through the SDK's real default chain (instance metadata disabled, so the
// test needs no network).
func TestLoadAWSConfigFailsFast(t *testing.T) {
	static := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	tests := map[string]struct {
		env     map[string]string
		given   *aws.Config
		region  string
		wantErr string
	}{
		"default chain without region":              {wantErr: "no region"},
		"default chain with region, no credentials": {env: map[string]string{"AWS_REGION": "eu-west-1"}, wantErr: "no usable credentials"},
		"flag region, no credentials":               {region: "eu-west-1", wantErr: "no usable credentials"},
		"flag region, environment credentials": {
			env:    map[string]string{"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"},
			region: "eu-west-1",
		},
		"environment region and credentials": {
			env: map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"},
		},
		"given without region":            {given: &aws.Config{Credentials: static}, wantErr: "no region"},
		"given without credentials":       {given: &aws.Config{Region: "eu-west-1"}, wantErr: "no credentials"},
		"given without region, flag sets": {given: &aws.Config{Credentials: static}, region: "eu-west-1"},
		"given complete":                  {given: &aws.Config{Region: "eu-west-1", Credentials: static}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			isolateAWSEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := loadAWSConfig(context.Background(), tc.given, tc.region)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("loadAWSConfig: %v", err)
				}
				if cfg.Region != "eu-west-1" {
					t.Errorf("region %q, want eu-west-1", cfg.Region)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("loadAWSConfig error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// isolateAWSEnv empties every source of the SDK's default chain that the
// machine running the test might have.
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	} {
		t.Setenv(k, "")
	}
}
