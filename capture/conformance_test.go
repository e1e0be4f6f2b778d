package capture

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// conformance describes a source for the contract suite every Source passes.
type conformance struct {
	// New builds a fresh source.
	New func(t *testing.T) stages.Source
	// Finite is true when the source ends (ErrEndOfStream) within MaxFrames.
	Finite    bool
	MaxFrames int
	// Blocking is true when a Read waits long enough (slow pacing) for the
	// cancel and close-while-reading checks.
	Blocking bool
}

// checkMats fails t if the live Mat count is not back to start once the
// test's cleanups (Close) ran.
func checkMats(t *testing.T) {
	t.Helper()
	start := matCount()
	t.Cleanup(func() {
		// Readers abandoned by Close finish in the background: poll briefly.
		deadline := time.Now().Add(3 * time.Second)
		for matCount() != start && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := matCount(); n != start {
			t.Errorf("live Mats: %d at start, %d at end (leak)", start, n)
		}
	})
}

// checkGoroutines fails t if goroutines started during the test (the
// connection readers) are still running after its cleanups.
func checkGoroutines(t *testing.T) {
	t.Helper()
	start := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > start && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > start {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutines: %d at start, %d at end (leak):\n%s", start, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// runConformance runs the Source contract checks on c.
func runConformance(t *testing.T, c conformance) {
	t.Helper()
	open := func(t *testing.T) stages.Source {
		t.Helper()
		checkMats(t)
		checkGoroutines(t)
		src := c.New(t)
		t.Cleanup(func() { _ = src.Close(context.Background()) })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := src.Connect(ctx); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		return src
	}

	t.Run("frames", func(t *testing.T) {
		src := open(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for want := uint64(1); want <= 3; want++ {
			f, err := src.Read(ctx)
			if err != nil {
				t.Fatalf("Read %d: %v", want, err)
			}
			if f.Seq != want || f.Width <= 0 || f.Height <= 0 || picture.Of(f).Empty() || f.Captured.IsZero() {
				t.Errorf("frame %d: seq %d size %dx%d empty %v captured %v", want, f.Seq, f.Width, f.Height, picture.Of(f).Empty(), f.Captured)
			}
			f.Release()
		}
	})

	if c.Finite {
		t.Run("eof", func(t *testing.T) {
			src := open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			n := 0
			for ; n <= c.MaxFrames; n++ {
				f, err := src.Read(ctx)
				if errors.Is(err, stages.ErrEndOfStream) {
					break
				}
				if err != nil {
					t.Fatalf("Read after %d frames: %v", n, err)
				}
				f.Release()
			}
			if n > c.MaxFrames {
				t.Fatalf("no end of stream after %d frames", n)
			}
			if _, err := src.Read(ctx); !errors.Is(err, stages.ErrEndOfStream) {
				t.Errorf("Read after end: %v, want ErrEndOfStream again", err)
			}
		})
	}

	t.Run("cancelled ctx", func(t *testing.T) {
		src := open(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if f, err := src.Read(ctx); !errors.Is(err, context.Canceled) {
			if f != nil {
				f.Release()
			}
			t.Errorf("Read with cancelled ctx: %v, want context.Canceled", err)
		}
	})

	if c.Blocking {
		t.Run("cancel unblocks read", func(t *testing.T) {
			src := open(t)
			// The first frame is immediate; the second waits for its slot.
			f, err := src.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			f.Release()
			// Both blocking sources pace at <= 10 fps: the next slot is >= 100ms away.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			start := time.Now()
			f, err = src.Read(ctx)
			if f != nil {
				f.Release()
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Read: %v, want deadline exceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Read returned %s after cancel", d)
			}
		})
		t.Run("close unblocks read", func(t *testing.T) {
			src := open(t)
			f, err := src.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			f.Release()
			errc := make(chan error, 1)
			go func() {
				f, err := src.Read(context.Background())
				if f != nil {
					f.Release()
				}
				errc <- err
			}()
			time.Sleep(50 * time.Millisecond)
			if err := src.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, stages.ErrNotConnected) {
					t.Errorf("Read during Close: %v, want ErrNotConnected", err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("Read still blocked 3s after Close")
			}
		})
	}

	t.Run("close twice, read after close", func(t *testing.T) {
		src := open(t)
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f.Release()
		for i := range 2 {
			if err := src.Close(context.Background()); err != nil {
				t.Errorf("Close #%d: %v", i+1, err)
			}
		}
		if f, err := src.Read(context.Background()); !errors.Is(err, stages.ErrNotConnected) {
			if f != nil {
				f.Release()
			}
			t.Errorf("Read after Close: %v, want ErrNotConnected", err)
		}
		if err := src.Connect(context.Background()); !errors.Is(err, stages.ErrNotConnected) {
			t.Errorf("Connect after Close: %v, want ErrNotConnected", err)
		}
	})
}

// mustNew builds a source or fails the test.
func mustNew(t *testing.T, cfg Config, onState func(State)) stages.Source {
	t.Helper()
	src, err := New(cfg, nil, onState)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestConformanceTestPattern(t *testing.T) {
	runConformance(t, conformance{
		New: func(t *testing.T) stages.Source {
			return mustNew(t, Config{ID: "t", URL: "test://?w=320&h=240&fps=2&frames=4"}, nil)
		},
		Finite: true, MaxFrames: 4, Blocking: true,
	})
}

func TestConformanceFile(t *testing.T) {
	runConformance(t, conformance{
		New: func(t *testing.T) stages.Source {
			return mustNew(t, Config{ID: "v", URL: "file://" + vtest}, nil)
		},
		Finite: true, MaxFrames: 2000,
	})
}

func TestConformanceRealtimeFile(t *testing.T) {
	runConformance(t, conformance{
		New: func(t *testing.T) stages.Source {
			return mustNew(t, Config{ID: "v", URL: vtest, Realtime: true, Loop: true}, nil)
		},
		Blocking: true,
	})
}
