package track

import (
	"testing"
	"time"

	"github.com/osprey-vision/osprey/geom"
)

// A person standing still while motion gating skips frames for longer than
// MaxLost keeps its track and its ID; the same person unlooked-for inside
// regions is not aged either; looked-for and not found, it ends as before.
func TestUpdateFocusedPausesAgeingWhereNobodyLooked(t *testing.T) {
	cfg := DefaultConfig()
	tr := New(cfg)
	person := []Detection{{Box: geom.Rect{X: 100, Y: 100, W: 40, H: 100}, Label: "person", Score: 0.9}}
	t0 := time.Unix(1000, 0)
	frame := 100 * time.Millisecond
	var id uint64
	for i := range 10 {
		up := tr.Update(person, t0.Add(time.Duration(i)*frame), true)
		if len(up.Tracks) == 1 {
			id = up.Tracks[0].ID
		}
	}
	if id == 0 {
		t.Fatal("no confirmed track after 10 detections")
	}
	never := func(geom.Rect) bool { return false }
	at := t0.Add(9 * frame)
	skipped := cfg.MaxLost*3 + time.Second
	for d := frame; d <= skipped; d += frame {
		up := tr.UpdateFocused(nil, at.Add(d), false, never)
		if len(up.Ended) > 0 || len(up.Tracks) != 1 {
			t.Fatalf("track ended after %v of skipped frames (max_lost %v)", d, cfg.MaxLost)
		}
	}
	at = at.Add(skipped)
	// Regions elsewhere: inferred, but the track's box was not looked at.
	elsewhere := func(b geom.Rect) bool { return b.X > 500 }
	for d := frame; d <= cfg.MaxLost*2; d += frame {
		if up := tr.UpdateFocused(nil, at.Add(d), true, elsewhere); len(up.Ended) > 0 {
			t.Fatalf("track outside the regions ended after %v", d)
		}
	}
	at = at.Add(cfg.MaxLost * 2)
	up := tr.Update(person, at.Add(frame), true)
	if len(up.Tracks) != 1 || up.Tracks[0].ID != id || len(up.Started) != 0 {
		t.Fatalf("re-check found %+v (started %d), want the same track %d", up.Tracks, len(up.Started), id)
	}
	// Looked for and not found: it ends after MaxLost, as without gating.
	at = at.Add(frame)
	ended := false
	for d := frame; d <= cfg.MaxLost+2*frame; d += frame {
		if up := tr.Update(nil, at.Add(d), true); len(up.Ended) == 1 {
			ended = true
		}
	}
	if !ended {
		t.Fatal("a track looked for and not found did not end after max_lost")
	}
}

// A weak detection seen once, then nothing looked for 7 s (a gated idle
// camera), then seen on two refreshes: without tentative_window its three
// sightings 7 s apart confirmed a track (a late track.started); with it the
// first sighting expired and the two later ones are not enough.
func TestTentativeWindowNeedsHitsCloseTogether(t *testing.T) {
	weak := []Detection{{Box: geom.Rect{X: 100, Y: 100, W: 40, H: 100}, Label: "person", Score: 0.7}}
	never := func(geom.Rect) bool { return false }
	t0 := time.Unix(1000, 0)
	frame := 100 * time.Millisecond
	run := func(cfg Config) (started int) {
		tr := New(cfg)
		started += len(tr.Update(weak, t0, true).Started)
		for d := frame; d < 7*time.Second; d += frame {
			started += len(tr.UpdateFocused(nil, t0.Add(d), false, never).Started)
		}
		started += len(tr.Update(weak, t0.Add(7*time.Second), true).Started)
		started += len(tr.UpdateFocused(nil, t0.Add(7*time.Second+frame), false, never).Started)
		started += len(tr.Update(weak, t0.Add(10*time.Second), true).Started)
		return started
	}
	cfg := DefaultConfig()
	if got := run(cfg); got != 0 {
		t.Fatalf("tentative_window %v: %d tracks started from sightings 7 s and 3 s apart, want 0", cfg.TentativeWindow, got)
	}
	cfg.TentativeWindow = 0
	if got := run(cfg); got != 1 {
		t.Fatalf("no tentative_window: %d tracks started, want 1 (the behaviour the window removes)", got)
	}
	// Seen on three frames in a row it is confirmed as before.
	tr := New(DefaultConfig())
	started := 0
	for i := range 3 {
		started += len(tr.Update(weak, t0.Add(time.Duration(i)*frame), true).Started)
	}
	if started != 1 {
		t.Fatalf("three sightings in a row started %d tracks, want 1", started)
	}
}
