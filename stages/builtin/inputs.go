package builtin

import (
	"sync"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/stages"
)

// Inputs hands model input tensors from the preprocess stage to the detect
// stage. The tensors are scratch private to those two stages, so they travel
// beside the frame rather than on it; a frame released before detect ran (a
// queue dropped it, a stage failed) returns its tensors to the pool through
// its OnRelease hook.
type Inputs struct {
	mu sync.Mutex
	m  map[*stages.Frame]*frameInputs
}

// frameInputs is one frame's model input: one tensor for the whole frame,
// or one per region (frame pixels) when motion gating focused it.
type frameInputs struct {
	ins     []*infer.Input
	regions []geom.Rect
}

func (fi *frameInputs) release() {
	for _, in := range fi.ins {
		in.Release()
	}
}

// NewInputs returns an empty table; one is shared by a preprocess stage and
// every detect replica after it.
func NewInputs() *Inputs { return &Inputs{m: map[*stages.Frame]*frameInputs{}} }

// put attaches fi to f until take or f's last release.
func (t *Inputs) put(f *stages.Frame, fi *frameInputs) {
	t.mu.Lock()
	t.m[f] = fi
	t.mu.Unlock()
	f.OnRelease(func() {
		if fi := t.take(f); fi != nil {
			fi.release()
		}
	})
}

// take detaches and returns f's inputs, or nil when f has none (it skipped
// inference). The caller releases what it took.
func (t *Inputs) take(f *stages.Frame) *frameInputs {
	t.mu.Lock()
	defer t.mu.Unlock()
	fi := t.m[f]
	delete(t.m, f)
	return fi
}

// has reports whether f carries model input.
func (t *Inputs) has(f *stages.Frame) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[f] != nil
}

// Len returns how many frames hold inputs (tests check it drains to zero).
func (t *Inputs) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
