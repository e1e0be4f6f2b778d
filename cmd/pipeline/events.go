package main

import (
	"context"
	"fmt"
	"os"
)

// cmdEvents is being built; see the issue tracker.
func cmdEvents(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline events: not built yet")
	return 1
}
