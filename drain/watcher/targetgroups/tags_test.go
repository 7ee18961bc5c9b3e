package targetgroups

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awselbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/albdrain/albdrain/internal/lbc"
)

// gatedTags lists one tagged ip target group once release is closed, or
// fails with the request's context if that ends first.
type gatedTags struct {
	listings chan struct{}
	release  chan struct{}
}

const taggedARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1"

func (g *gatedTags) DescribeTargetGroups(ctx context.Context, _ *awselbv2.DescribeTargetGroupsInput, _ ...func(*awselbv2.Options)) (*awselbv2.DescribeTargetGroupsOutput, error) {
	g.listings <- struct{}{}
	select {
	case <-g.release:
		return &awselbv2.DescribeTargetGroupsOutput{TargetGroups: []types.TargetGroup{{TargetGroupArn: aws.String(taggedARN), TargetType: types.TargetTypeEnumIp}}}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *gatedTags) DescribeTags(context.Context, *awselbv2.DescribeTagsInput, ...func(*awselbv2.Options)) (*awselbv2.DescribeTagsOutput, error) {
	return &awselbv2.DescribeTagsOutput{TagDescriptions: []types.TagDescription{{
		ResourceArn: aws.String(taggedARN),
		Tags: []types.Tag{
			{Key: aws.String(lbc.TagV1Namespace), Value: aws.String("shop")},
			{Key: aws.String(lbc.TagV1ServiceName), Value: aws.String("web")},
			{Key: aws.String(lbc.TagV1ServicePort), Value: aws.String("80")},
		},
	}}}, nil
}

// TestTagListingIsShared checks that a hold waiting for another's listing
// of the account can leave when its own context ends, and that the listing
// survives the end of the hold that started it.
func TestTagListingIsShared(t *testing.T) {
	api := &gatedTags{listings: make(chan struct{}, 4), release: make(chan struct{})}
	tags := &Tags{API: api, MaxAge: time.Minute, MinAge: time.Second}

	startCtx, endStarter := context.WithCancel(context.Background())
	starter := make(chan error, 1)
	go func() {
		_, err := tags.index(startCtx, tags.MaxAge)
		starter <- err
	}()
	<-api.listings

	waitCtx, endWaiter := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() {
		_, err := tags.index(waitCtx, tags.MaxAge)
		waiter <- err
	}()
	endWaiter()
	select {
	case err := <-waiter:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waiting hold: %v, want its own cancellation", err)
		}
	case <-time.After(10 * time.Second):
		close(api.release)
		t.Fatal("a hold whose context ended still waits for another hold's listing")
	}
	endStarter()
	if err := <-starter; !errors.Is(err, context.Canceled) {
		t.Errorf("starting hold: %v, want its own cancellation", err)
	}

	joined := make(chan []taggedGroup, 1)
	go func() {
		groups, err := tags.index(context.Background(), tags.MaxAge)
		if err != nil {
			t.Error(err)
		}
		joined <- groups
	}()
	close(api.release)
	want := []taggedGroup{{arn: taggedARN, namespace: "shop", service: "web", port: "80"}}
	if diff := cmp.Diff(want, <-joined, cmp.AllowUnexported(taggedGroup{})); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	if n := len(api.listings); n != 0 {
		t.Errorf("%d more listings of the account, want one in all", n)
	}
}
