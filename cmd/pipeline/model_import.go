package main

import (
	"context"
	"fmt"
	"os"
)

// cmdModelImport is being built; see the issue tracker.
func cmdModelImport(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline model import: not built yet")
	return 1
}

// cmdModelInspect is being built; see the issue tracker.
func cmdModelInspect(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline model inspect: not built yet")
	return 1
}
