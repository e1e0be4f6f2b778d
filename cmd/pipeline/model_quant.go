package main

import (
	"context"
	"fmt"
	"os"
)

// cmdModelQuantize is being built; see the issue tracker.
func cmdModelQuantize(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline model quantize: not built yet")
	return 1
}

// cmdModelFP16 is being built; see the issue tracker.
func cmdModelFP16(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline model fp16: not built yet")
	return 1
}

// cmdModelEval is being built; see the issue tracker.
func cmdModelEval(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline model eval: not built yet")
	return 1
}
