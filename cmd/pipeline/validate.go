package main

import (
	"context"
	"fmt"
	"os"
)

// cmdValidate is being built; see the issue tracker.
func cmdValidate(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "pipeline validate: not built yet")
	return 1
}
