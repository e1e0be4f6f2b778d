package builtin

import (
	"sync"

	"github.com/osprey-vision/osprey/infer"
	"github.com/osprey-vision/osprey/stages"
)

// Inputs hands model input tensors from the preprocess stage to the detect
// stage. The tensor is scratch private to those two stages, so it travels
// beside the frame rather than on it; a frame released before detect ran (a
// queue dropped it, a stage failed) returns its tensor to the pool through
// its OnRelease hook.
type Inputs struct {
	mu sync.Mutex
	m  map[*stages.Frame]*infer.Input
}

// NewInputs returns an empty table; one is shared by a preprocess stage and
// every detect replica after it.
func NewInputs() *Inputs { return &Inputs{m: map[*stages.Frame]*infer.Input{}} }

// put attaches in to f until take or f's last release.
func (t *Inputs) put(f *stages.Frame, in *infer.Input) {
	t.mu.Lock()
	t.m[f] = in
	t.mu.Unlock()
	f.OnRelease(func() {
		if in := t.take(f); in != nil {
			in.Release()
		}
	})
}

// take detaches and returns f's input, or nil when f has none (it skipped
// inference). The caller releases what it took.
func (t *Inputs) take(f *stages.Frame) *infer.Input {
	t.mu.Lock()
	defer t.mu.Unlock()
	in := t.m[f]
	delete(t.m, f)
	return in
}

// has reports whether f carries model input.
func (t *Inputs) has(f *stages.Frame) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[f] != nil
}

// Len returns how many frames hold an input (tests check it drains to zero).
func (t *Inputs) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
