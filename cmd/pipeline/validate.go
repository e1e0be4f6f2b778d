package main

import (
	"context"
	"fmt"
	"os"
)

// cmdValidate checks pipeline files without running them: exit 1 when any
// has a problem, each problem printed as file:line:col: field: message.
func cmdValidate(_ context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: pipeline validate pipelines/*.yaml")
		return 2
	}
	code := 0
	for _, path := range args {
		if _, err := loadPipeline(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
			continue
		}
		fmt.Printf("%s: ok\n", path)
	}
	return code
}
