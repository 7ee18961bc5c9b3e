// Command albdrain-hold is the in-pod helper albdrain injects as a
// container's preStop. See package drain/helper for what it does and
// internal/contract for its command line:
//
//	albdrain-hold wait --max-hold=D --fallback=D --quiet-period=D [--quiet-gaps=K --quiet-period-max=D] [--shutdown-budget=D] --port=N... [--then=JSON]
//	albdrain-hold sleep --max-hold=D [--then=JSON]
//	albdrain-hold install DEST
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/albdrain/albdrain/drain/helper"
	"github.com/albdrain/albdrain/internal/contract"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == contract.CmdInstall {
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "usage: albdrain-hold install DEST")
			return 2
		}
		if err := helper.Install(args[1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	spec, err := contract.Parse(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "albdrain-hold:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := helper.Run(ctx, spec, helper.EnvFromOS(), helper.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "albdrain-hold:", err)
		return 1
	}
	return 0
}
