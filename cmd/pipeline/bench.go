package main

import (
	"context"
	"fmt"
	"os"
)

// cmdBench is being built; see the issue tracker.
func cmdBench(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline bench: not built yet")
	return 1
}
