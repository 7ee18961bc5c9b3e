package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestRunRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{nil, {"describe", "web-1"}, {"explain"}, {"explain", "a", "b"}, {"explain", "web-1", "-o", "yaml"}} {
		err := run(context.Background(), args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "usage: kubectl albdrain explain POD") {
			t.Errorf("run(%q) = %v, want the usage", args, err)
		}
	}
}
