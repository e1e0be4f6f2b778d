package record

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/sched"
	"github.com/osprey-vision/osprey/internal/testlog"
	"github.com/osprey-vision/osprey/stages"
)

// TestEncoderRunsInBackground: the recorder's x264 encode loop runs through
// Resources.Background, on a thread the kernel reports as SCHED_IDLE.
func TestEncoderRunsInBackground(t *testing.T) {
	realpart.Command(t, realpart.FFmpeg, "ffmpeg")
	matcheck.Leaks(t)
	var mu sync.Mutex
	var classes []sched.Class
	res := &stages.Resources{Pipeline: "test", Log: testlog.New(t), Metrics: prometheus.NewRegistry(), Emit: newEmitted().emit,
		Background: func(fn func()) {
			sched.Run(sched.Policy{Class: sched.Idle}, func(err error) {
				in, rerr := sched.Thread(sched.TID())
				if err != nil || rerr != nil {
					t.Errorf("background: %v, read back: %v", err, rerr)
				}
				mu.Lock()
				classes = append(classes, in.Class)
				mu.Unlock()
				fn()
			})
		}}
	cfg := testConfig(t.TempDir())
	sk, err := Plugin().Build(&cfg, res)
	if err != nil {
		t.Fatal(err)
	}
	s := sk.(*Sink)
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	src := pattern(t, 160, 120)
	for range 5 {
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f.Captured = time.Now()
		if err := s.Write(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		f.Release()
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(classes) != 1 || classes[0] != sched.Idle {
		t.Fatalf("encode loops ran on %v, want one idle thread", classes)
	}
}
