package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRun(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "albdrain-hold")
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no subcommand", nil, 2},
		{"unknown subcommand", []string{"hold"}, 2},
		{"bad flag", []string{"wait", "--max-hold=forever"}, 2},
		{"install without a destination", []string{"install"}, 2},
		{"install", []string{"install", dest}, 0},
		{"sleep", []string{"sleep", "--max-hold=1ms"}, 0},
		{"failing then-hook", []string{"sleep", "--max-hold=1ms", `--then={"exec":{"command":["false"]}}`}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
	if _, err := os.Stat(dest); err != nil {
		t.Errorf("install left no helper at %s: %v", dest, err)
	}
}
