package main

import (
	"context"
	"fmt"
	"os"
)

// cmdModel is being built; see the issue tracker.
func cmdModel(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline model: not built yet")
	return 1
}
