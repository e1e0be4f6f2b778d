package main

import (
	"context"
	"fmt"
	"os"
)

// cmdDetect is being built; see the issue tracker.
func cmdDetect(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline detect: not built yet")
	return 1
}
