package main

import (
	"context"
	"fmt"
	"os"
)

// cmdRun is being built; see the issue tracker.
func cmdRun(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline run: not built yet")
	return 1
}
