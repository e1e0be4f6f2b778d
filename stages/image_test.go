package stages

import (
	"sync/atomic"
	"testing"
)

// liveImages counts testImages not yet closed; imageLeaks checks it, so the
// runner's ownership rules are tested here without OpenCV.
var liveImages atomic.Int64

// testImage is a 4x4 Image that counts itself and fails on a double close.
type testImage struct{ closed atomic.Bool }

func newTestImage() *testImage {
	liveImages.Add(1)
	return &testImage{}
}

func (*testImage) Cols() int { return 4 }
func (*testImage) Rows() int { return 4 }
func (m *testImage) Close() error {
	if m.closed.Swap(true) {
		panic("stages test: image closed twice")
	}
	liveImages.Add(-1)
	return nil
}

// imageLeaks fails t if images created during the test are still open when
// it ends.
func imageLeaks(t testing.TB) {
	t.Helper()
	start := liveImages.Load()
	t.Cleanup(func() {
		if n := liveImages.Load(); n != start {
			t.Errorf("image leak: %d live at start, %d at end", start, n)
		}
	})
}
