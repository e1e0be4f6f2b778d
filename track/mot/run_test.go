package mot

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/geom"
	"github.com/osprey-vision/osprey/track"
)

// walker is one object moving right 4 px a frame, detected on the frames
// for which seen returns true, scoring score.
func walker(frames int, score float64, seen func(n int) bool) []Frame {
	var out []Frame
	for n := 1; n <= frames; n++ {
		f := Frame{Number: n}
		if seen(n) {
			f.Rows = []Row{{Frame: n, ID: -1, Box: geom.Rect{X: 100 + 4*float64(n), Y: 50, W: 40, H: 100}, Conf: score}}
		}
		out = append(out, f)
	}
	return out
}

// reported returns the frames on which track 1 is reported.
func reported(t *testing.T, frames []Frame, opts Options) []int {
	t.Helper()
	res, err := RunWith(frames, 10, track.DefaultConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for i, r := range res {
		if r.Track.ID != 1 {
			t.Fatalf("result %d: track %d, want only track 1", i, r.Track.ID)
		}
		if i > 0 && res[i-1].Frame >= r.Frame {
			t.Fatalf("results out of frame order: %d after %d", r.Frame, res[i-1].Frame)
		}
		got = append(got, r.Frame)
	}
	return got
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The zero Options report what the pipeline reports live; Delay backfills
// a track's tentative frames and fills a gap closed within the lag, and
// only then.
func TestRunWithDelay(t *testing.T) {
	// Score 0.8 < confirm_score: confirmed on its 3rd hit (frame 3).
	// Missed on frames 6-7 (closed on 8, 2 frames later) and 11-15
	// (closed on 16, 5 frames later).
	frames := walker(20, 0.8, func(n int) bool { return (n < 6 || n > 7) && (n < 11 || n > 15) })
	live := []int{3, 4, 5, 8, 9, 10, 16, 17, 18, 19, 20}
	if got := reported(t, frames, Options{}); !equal(got, live) {
		t.Fatalf("live: frames %v, want %v", got, live)
	}
	if res, _ := Run(frames, 10, track.DefaultConfig()); len(res) != len(live) {
		t.Fatalf("Run: %d results, want the live %d", len(res), len(live))
	}
	// A 300 ms lag at 10 fps is 3 frames: frames 1-2 (confirmed on 3, 2
	// frames later) and the 2-frame gap are reported; of the 5-frame gap
	// only the last 3 frames were still uncommitted when frame 16 matched.
	want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17, 18, 19, 20}
	if got := reported(t, frames, Options{Delay: 300 * time.Millisecond}); !equal(got, want) {
		t.Fatalf("delay 300ms: frames %v, want %v", got, want)
	}
	// The filled boxes lie on the line between the two matched ones.
	res, _ := RunWith(frames, 10, track.DefaultConfig(), Options{Delay: 300 * time.Millisecond})
	var b5, b6, b8 geom.Rect
	for _, r := range res {
		switch r.Frame {
		case 5:
			b5 = r.Track.Box
		case 6:
			b6 = r.Track.Box
			if r.Track.Matched {
				t.Error("a filled box is reported as matched")
			}
		case 8:
			b8 = r.Track.Box
		}
	}
	if want := b5.X + (b8.X-b5.X)/3; b6.X < want-1e-9 || b6.X > want+1e-9 {
		t.Errorf("filled frame 6 at x %.3f, want %.3f (a third of the way from frame 5 to 8)", b6.X, want)
	}
}

// MinStreak holds a track back until that many consecutive matches, and a
// track that never gets them is never reported.
func TestRunWithMinStreak(t *testing.T) {
	frames := walker(12, 0.95, func(n int) bool { return n != 3 && n != 7 })
	// Confirmed at once (score >= confirm_score); a streak of 3 is first
	// reached on frame 6 (4, 5, 6), and from then on every match counts.
	want := []int{6, 8, 9, 10, 11, 12}
	if got := reported(t, frames, Options{MinStreak: 3}); !equal(got, want) {
		t.Fatalf("min streak 3: frames %v, want %v", got, want)
	}
	// With a 200 ms lag (2 frames) frames 4 and 5 and the gap at 7 come back.
	want = []int{4, 5, 6, 7, 8, 9, 10, 11, 12}
	if got := reported(t, frames, Options{MinStreak: 3, Delay: 200 * time.Millisecond}); !equal(got, want) {
		t.Fatalf("min streak 3, delay 200ms: frames %v, want %v", got, want)
	}
	if got := reported(t, frames, Options{MinStreak: 6}); len(got) != 0 {
		t.Fatalf("min streak 6: reported on %v, want never", got)
	}
	if _, err := RunWith(frames, 10, track.DefaultConfig(), Options{Delay: -time.Second}); err == nil {
		t.Error("negative delay accepted")
	}
	if _, err := RunWith(frames, 10, track.DefaultConfig(), Options{MinStreak: -1}); err == nil {
		t.Error("negative min streak accepted")
	}
}

// The offline output: every frame of the track from its first detection
// to its last, the tentative ones and the gaps included, boxes on the
// smoother's path (the gate on gaps is track.Smooth's, tested there).
func TestRunWithSmooth(t *testing.T) {
	frames := walker(20, 0.8, func(n int) bool { return (n < 6 || n > 7) && (n < 11 || n > 15) })
	res, err := RunWith(frames, 10, track.DefaultConfig(), Options{Smooth: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 20 {
		t.Fatalf("%d results, want frames 1-20", len(res))
	}
	for i, r := range res {
		truth := 100 + 4*float64(i+1)
		if r.Frame != i+1 || r.Track.ID != 1 || math.Abs(r.Track.Box.X-truth) > 0.5 || math.Abs(r.Track.Box.W-40) > 0.5 {
			t.Fatalf("result %d: frame %d track %d box %v, want frame %d track 1 at x %.0f", i, r.Frame, r.Track.ID, r.Track.Box, i+1, truth)
		}
		if missed := (i+1 >= 6 && i+1 <= 7) || (i+1 >= 11 && i+1 <= 15); r.Track.Matched == missed {
			t.Errorf("frame %d: matched %v, want %v", r.Frame, r.Track.Matched, !missed)
		}
	}
	if _, err := RunWith(frames, 10, track.DefaultConfig(), Options{Smooth: true, Delay: time.Second}); err == nil {
		t.Error("delay with the offline output accepted")
	}
	if _, err := RunSteps(Steps(frames, 10), track.DefaultConfig(), Options{MinStreak: 3}); err == nil {
		t.Error("RunSteps: min streak without Smooth accepted")
	}
	bad := Steps(frames, 10)
	bad[3].At = bad[2].At
	if _, err := RunSteps(bad, track.DefaultConfig(), Options{Smooth: true}); err == nil {
		t.Error("RunSteps: two steps at one time accepted")
	}
	// RunSteps without options is the live output, as Run.
	live, _ := Run(frames, 10, track.DefaultConfig())
	steps, err := RunSteps(Steps(frames, 10), track.DefaultConfig(), Options{})
	if err != nil || len(steps) != len(live) {
		t.Fatalf("RunSteps live: %d results (%v), want Run's %d", len(steps), err, len(live))
	}
}

// BenchmarkRunSteps is the whole writer per frame, tracker included: n
// objects on a grid walking right, detected on 4 frames of 5, 100 frames,
// live against offline (the smoothing pass is the difference).
func BenchmarkRunSteps(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		steps := make([]Step, 100)
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range steps {
			steps[i] = Step{Frame: i + 1, At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Inferred: true}
			for k := range n {
				if (i+k)%5 == 0 {
					continue
				}
				x := float64(k%25)*100 + 2*float64(i)
				y := float64(k/25) * 120
				steps[i].Dets = append(steps[i].Dets, track.Detection{Box: geom.Rect{X: x, Y: y, W: 40, H: 100}, Label: "person", Score: 0.95})
			}
		}
		for _, smooth := range []bool{false, true} {
			name := "live"
			if smooth {
				name = "offline"
			}
			b.Run(fmt.Sprintf("objects=%d/%s", n, name), func(b *testing.B) {
				for b.Loop() {
					if _, err := RunSteps(steps, track.DefaultConfig(), Options{Smooth: smooth}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(steps)), "ns/frame")
			})
		}
	}
}
