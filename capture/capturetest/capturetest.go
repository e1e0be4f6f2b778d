// Package capturetest is the conformance suite every stages.Source passes:
// frames in order, end of stream, a cancelled or expiring context, Close
// while Read blocks, Close twice, Read and Connect after Close and, for
// sources that have a stream to lose, reconnecting after an outage.
//
// Run it from the source's own tests with a constructor and Options that say
// what the source promises. Today it runs on capture's file://, realtime
// file, test://, gst: and rtsp:// (against the GStreamer RTSP server of
// internal/rtsptest) sources, and on the runner's reload hub (stages tests).
// v4l2:// is not covered: a V4L2 device needs either a camera or the
// v4l2loopback kernel module, and the test machines (a VM kernel without
// loadable modules) have neither; run Run on a v4l2 source where one exists.
//
// Every subtest checks for leaks in two ways, so the check is active in every
// build: each frame Read returned must be released exactly once in all (its
// reference count is 0, not negative, after Close) and its Mat closed; and,
// built with -tags matprofile, gocv's live Mat count must come back to its
// start, which also covers Mats the source keeps internally. Goroutines the
// source started must be gone after Close.
package capturetest

import (
	"gocv.io/x/gocv"

	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// Options says what a source promises, which selects the checks that apply.
type Options struct {
	// Finite is true when the source ends (ErrEndOfStream) within MaxFrames
	// frames: a file without loop, test:// with frames=N.
	Finite    bool
	MaxFrames int
	// Paced is true when Read waits at least 100 ms for each frame after the
	// first (a live or realtime source at <= 10 fps): the suite then checks
	// that an expiring context and Close both unblock a waiting Read.
	Paced bool
	// Interrupt, when set (for a source of one stream), cuts the source off
	// from its stream (kills the camera's server) and returns a func that
	// brings the stream back. The suite then checks reconnect semantics: no
	// frames during the outage, then frames again with larger sequence
	// numbers, whether the source reconnects inside Read or returns
	// ErrNotConnected and recovers when Connect is called again, as the
	// runner does.
	Interrupt func(t *testing.T) (restore func())
	// Outage is how long the stream stays cut off (default 4 s); make it
	// longer than the source's stall timeout so the loss is noticed.
	Outage time.Duration
	// Recover bounds how long frames may take to resume after restore
	// (default 30 s).
	Recover time.Duration
}

// timeout bounds every single Connect and Read in the suite that is not
// meant to block.
const timeout = 30 * time.Second

// Run runs the conformance checks on sources built by newSource, one fresh
// source per subtest. newSource may fail t; it must not call Connect.
func Run(t *testing.T, newSource func(t *testing.T) stages.Source, o Options) {
	t.Helper()
	if o.Outage <= 0 {
		o.Outage = 4 * time.Second
	}
	if o.Recover <= 0 {
		o.Recover = 30 * time.Second
	}
	open := func(t *testing.T) *tracked {
		t.Helper()
		src := &tracked{Source: newSource(t)}
		// Cleanups run last-in first-out: Close, then the goroutine, Mat and
		// frame checks, then cancelling the source's context.
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		t.Cleanup(func() { src.checkFrames(t) })
		matcheck.Leaks(t)
		goroutines(t)
		t.Cleanup(func() { _ = src.Close(context.Background()) })
		// Connect's context lives as long as the test, as Run's does for the
		// runner's sources (the reload hub runs its streams under it); the
		// timer bounds a Connect that hangs.
		stop := time.AfterFunc(timeout, cancel)
		err := src.Connect(ctx)
		if !stop.Stop() {
			t.Fatalf("Connect did not return within %s", timeout)
		}
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		return src
	}

	t.Run("frames", func(t *testing.T) {
		src := open(t)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		last := map[string]uint64{} // Seq counts per stream (the hub mixes several)
		for i := range 3 {
			f, err := src.Read(ctx)
			if err != nil {
				t.Fatalf("Read %d: %v", i+1, err)
			}
			if f.Seq <= last[f.Stream] || f.Width <= 0 || f.Height <= 0 || picture.Of(f).Empty() || f.Captured.IsZero() {
				t.Errorf("frame %d: stream %q seq %d after %d, size %dx%d, empty %v, captured %v",
					i+1, f.Stream, f.Seq, last[f.Stream], f.Width, f.Height, picture.Of(f).Empty(), f.Captured)
			}
			if f.Refs() != 1 {
				t.Errorf("frame %d: %d references on return, want 1 (the caller's)", i+1, f.Refs())
			}
			last[f.Stream] = f.Seq
			f.Release()
		}
	})

	if o.Finite {
		t.Run("eof", func(t *testing.T) {
			src := open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
			defer cancel()
			n := 0
			for ; n <= o.MaxFrames; n++ {
				f, err := src.Read(ctx)
				if errors.Is(err, stages.ErrEndOfStream) {
					break
				}
				if err != nil {
					t.Fatalf("Read after %d frames: %v", n, err)
				}
				f.Release()
			}
			if n > o.MaxFrames {
				t.Fatalf("no end of stream after %d frames", n)
			}
			if n == 0 {
				t.Fatal("end of stream before the first frame")
			}
			if f, err := src.Read(ctx); !errors.Is(err, stages.ErrEndOfStream) {
				release(f)
				t.Errorf("Read after end: %v, want ErrEndOfStream again", err)
			}
		})
	}

	t.Run("cancelled ctx", func(t *testing.T) {
		src := open(t)
		// Let a frame be ready, so the check is that a done context wins.
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f.Release()
		time.Sleep(150 * time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if f, err := src.Read(ctx); !errors.Is(err, context.Canceled) {
			release(f)
			t.Errorf("Read with cancelled ctx: %v, want context.Canceled", err)
		}
	})

	if o.Paced {
		t.Run("deadline unblocks read", func(t *testing.T) {
			src := open(t)
			// The first frame is immediate; the next waits for its slot,
			// which is >= 100 ms away at <= 10 fps.
			f, err := src.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			f.Release()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			start := time.Now()
			f, err = src.Read(ctx)
			release(f)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Read: %v, want deadline exceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Read returned %s after its deadline", d)
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
				release(f)
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
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if f, err := src.Read(ctx); !errors.Is(err, stages.ErrNotConnected) {
			release(f)
			t.Errorf("Read after Close: %v, want ErrNotConnected", err)
		}
		if err := src.Connect(ctx); !errors.Is(err, stages.ErrNotConnected) {
			t.Errorf("Connect after Close: %v, want ErrNotConnected", err)
		}
	})

	if o.Interrupt != nil {
		t.Run("reconnect", func(t *testing.T) {
			src := open(t)
			r := &reconnector{src: src}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			for range 5 {
				if err := r.next(t, ctx); err != nil {
					t.Fatalf("Read before the outage: %v", err)
				}
			}
			before := r.last
			restore := o.Interrupt(t)
			// Frames already decoded may still come for a moment; after that
			// the stream is gone and Read must not invent frames.
			graceD := min(time.Second, o.Outage/2)
			grace := time.Now().Add(graceD)
			end := time.Now().Add(o.Outage)
			late := 0
			for time.Now().Before(end) {
				rctx, rcancel := context.WithDeadline(context.Background(), end)
				err := r.next(t, rctx)
				rcancel()
				switch {
				case err == nil:
					if time.Now().After(grace) {
						late++
					}
				case errors.Is(err, context.DeadlineExceeded):
				default:
					t.Fatalf("Read during the outage: %v, want it to block or return ErrNotConnected", err)
				}
			}
			if late > 0 {
				t.Errorf("%d frames arrived during the outage, after its first %s: was the stream cut off?", late, graceD)
			}
			restore()
			rctx, rcancel := context.WithTimeout(context.Background(), o.Recover)
			defer rcancel()
			for range 5 {
				if err := r.next(t, rctx); err != nil {
					t.Fatalf("Read after the stream came back: %v (no frames within %s)", err, o.Recover)
				}
			}
			if r.last <= before {
				t.Errorf("sequence %d after the outage, not above %d before it", r.last, before)
			}
			t.Logf("reconnected: seq %d before the outage, %d after; %d ErrNotConnected returned", before, r.last, r.notConnected)
		})
	}
}

// tracked wraps the source under test and records every frame Read returns.
type tracked struct {
	stages.Source
	mu     sync.Mutex
	frames []*stages.Frame
}

func (s *tracked) Read(ctx context.Context) (*stages.Frame, error) {
	f, err := s.Source.Read(ctx)
	if f != nil {
		s.mu.Lock()
		s.frames = append(s.frames, f)
		s.mu.Unlock()
	}
	if f != nil && err != nil {
		// The contract returns a frame or an error, never both.
		return f, errors.Join(err, errors.New("capturetest: Read returned a frame and an error"))
	}
	return f, err
}

// checkFrames fails t unless every frame Read returned was released exactly
// once in all (the test's one Release, none by the source) and its Mat is
// closed: the leak check that needs no matprofile build.
func (s *tracked) checkFrames(t *testing.T) {
	t.Helper()
	for _, e := range s.frameErrors() {
		t.Error(e)
	}
}

func (s *tracked) frameErrors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []string
	for _, f := range s.frames {
		switch refs := f.Refs(); {
		case refs > 0:
			errs = append(errs, fmt.Sprintf("frame %d of %q: %d references left after Close (a leak: the source kept one)", f.Seq, f.Stream, refs))
		case refs < 0:
			errs = append(errs, fmt.Sprintf("frame %d of %q: released %d times too often (the source released a frame it handed out)", f.Seq, f.Stream, -refs))
		case matOpen(f):
			errs = append(errs, fmt.Sprintf("frame %d of %q: released, but its Mat is still open", f.Seq, f.Stream))
		}
	}
	return errs
}

// reconnector reads as the runner does: it calls Connect again after
// ErrNotConnected, and checks that sequence numbers only grow.
type reconnector struct {
	src          stages.Source
	last         uint64
	notConnected int
}

// next returns once one frame was read and released, or with ctx's error,
// or with an error that is neither ErrNotConnected nor ctx's.
func (r *reconnector) next(t *testing.T, ctx context.Context) error {
	t.Helper()
	for {
		f, err := r.src.Read(ctx)
		if err == nil {
			if f.Seq <= r.last {
				t.Errorf("seq %d after %d: sequence numbers must grow across a reconnect", f.Seq, r.last)
			}
			r.last = f.Seq
			f.Release()
			return nil
		}
		if !errors.Is(err, stages.ErrNotConnected) {
			return err
		}
		r.notConnected++
		// The runner's back-off between Connect attempts.
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			err := r.src.Connect(ctx)
			if err == nil {
				break
			}
			if !errors.Is(err, stages.ErrNotConnected) {
				return err
			}
		}
	}
}

// goroutines fails t if goroutines started during the test (a source's
// readers) are still running after its cleanups.
func goroutines(t *testing.T) {
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

func release(f *stages.Frame) {
	if f != nil {
		f.Release()
	}
}

// matOpen reports whether f's image is a gocv Mat that is still open.
func matOpen(f *stages.Frame) bool {
	m, ok := f.Image.(*gocv.Mat)
	return ok && m.Ptr() != nil
}
