package capture_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/osprey-vision/osprey/capture"
)

// A source reads frames and reports up/down transitions; this one is the
// synthetic pattern, three frames long.
func ExampleNew() {
	cfg := capture.Config{ID: "demo", URL: "test://?w=320&h=240&fps=100&frames=3"}
	src, err := capture.New(cfg, slog.Default(), func(s capture.State) {
		fmt.Printf("state: up=%v reason=%q\n", s.Up, s.Reason)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close(context.Background())
	ctx := context.Background()
	if err := src.Connect(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for {
		f, err := src.Read(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("frame %d: %dx%d\n", f.Seq, f.Width, f.Height)
		f.Release()
	}
	// Output:
	// state: up=true reason=""
	// frame 1: 320x240
	// frame 2: 320x240
	// frame 3: 320x240
	// state: up=false reason="end of stream"
	// capture: stream "demo": stages: end of stream
}
