package builtin

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/internal/sched"
)

// DetectThreadName names a detector's own thread (detect.cpus, detect.nice);
// ONNX Runtime's pool threads, started from it, inherit the name, so
// `pipeline bench` charges them to detect.
const DetectThreadName = "osp:detect"

// threadDetector runs a detector session on an OS thread of its own that
// carries a scheduling policy (detect.cpus, detect.nice). The session is
// opened there too: ONNX Runtime starts its intra-op pool from the opening
// thread, so the pool inherits the affinity and nice value, and the calling
// thread (which runs part of every inference) has them as well.
type threadDetector struct {
	w   *sched.Worker
	det *infer.Detector
	// owner closes the worker after the session (the stage's base
	// detector; its governor variants share the thread).
	owner bool
}

// newDetectThread starts the thread for one detector session and its
// variants; nil when p changes nothing (the session runs on the runner's
// goroutine, as before).
func newDetectThread(p sched.Policy) (*sched.Worker, error) {
	if p.IsZero() {
		return nil, nil
	}
	w, err := sched.Start(DetectThreadName, p)
	if err != nil {
		return nil, fmt.Errorf("detect: thread with %s: %w", p, err)
	}
	return w, nil
}

// openOn opens a session on w (nil: on the calling goroutine) and returns it
// with the Detector the stage runs.
func openOn(w *sched.Worker, owner bool, cfg infer.Config, log *slog.Logger) (*infer.Detector, Detector, error) {
	if w == nil {
		d, err := infer.Open(cfg, log)
		if err != nil {
			return nil, nil, err // not a nil *Detector in a non-nil interface
		}
		return d, d, nil
	}
	var d *infer.Detector
	var err error
	w.Do(func() { d, err = infer.Open(cfg, log) })
	if err != nil {
		if owner {
			w.Close()
		}
		return nil, nil, err
	}
	return d, &threadDetector{w: w, det: d, owner: owner}, nil
}

// Detect implements Detector on the detector's thread.
func (t *threadDetector) Detect(ctx context.Context, in []*infer.Input) (out [][]infer.Detection, err error) {
	t.w.Do(func() { out, err = t.det.Detect(ctx, in) })
	return out, err
}

// Close closes the session on its thread, then ends the thread if this
// detector owns it.
func (t *threadDetector) Close() error {
	var err error
	t.w.Do(func() { err = t.det.Close() })
	if t.owner {
		t.w.Close()
	}
	return err
}

// Provider names the session's execution provider.
func (t *threadDetector) Provider() string { return t.det.Provider() }
