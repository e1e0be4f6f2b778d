package record

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/event"
	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/stages"
)

// TestEncodedClip runs the test:// pattern through the recorder (encoded
// with libx264 into MPEG-TS segments, capture times jittered), raises a line crossing and checks the
// clip ffmpeg cuts: it starts on the segment boundary at or before
// pre_capture before the crossing, holds pre_capture + post_capture, decodes
// cleanly and is faststart; clip.ready names it and the crossing.
func TestEncodedClip(t *testing.T) {
	matcheck.Leaks(t)
	cfg := testConfig(t.TempDir())
	s, em, reg := newTestSink(t, cfg, nil)
	src := pattern(t, 320, 240)

	// 6 s of video at 20 fps, timed as if captured live over the last 6 s.
	const fps, n, crossAt = 20, 120, 60
	t0 := time.Now().Add(-6 * time.Second)
	step := time.Second / fps
	var thumbs [][]byte
	var cross event.Event
	for k := range n {
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Capture times jitter by up to 20 ms, as a loaded machine's do:
		// the clip must still play at a steady rate.
		f.Captured = t0.Add(time.Duration(k)*step + time.Duration((k*7)%5-2)*10*time.Millisecond)
		thumbs = append(thumbs, frameThumb(t, f))
		if k == crossAt {
			cross = crossing("cam", f.Captured)
			f.Events = []event.Event{cross}
		}
		if err := s.Write(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		f.Release()
		time.Sleep(3 * time.Millisecond) // the encoder keeps up; nothing is dropped
	}
	fed := time.Now()
	ev := em.next(t, 15*time.Second)
	t.Logf("fed in %v, clip.ready %v later", fed.Sub(t0.Add(6*time.Second)), time.Since(fed))
	if ev.Type != event.ClipReady || ev.ClipOf != cross.ID || ev.ClipError != "" {
		t.Fatalf("got %+v, want a clip.ready for %s", ev, cross.ID)
	}
	if want := "clips/cam/" + cross.ID + ".mp4"; ev.Clip != want {
		t.Fatalf("clip = %q, want %q", ev.Clip, want)
	}
	path := clipPath(cfg, ev)
	checkClip(t, path)
	p, dur := ffprobe(t, path)
	if p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 {
		t.Fatalf("clip stream %+v, want h264 320x240", p.Streams[0])
	}
	if math.Abs(dur-ev.ClipDuration) > 0.01 {
		t.Fatalf("ffprobe says %.3fs, clip_duration %.3f", dur, ev.ClipDuration)
	}
	// Which source frame does the clip start with? The pattern is drawn
	// from the frame number, so the nearest thumbnail says.
	m := firstFrame(t, path)
	k0 := nearest(thumb(m), thumbs)
	m.Close()
	lead := time.Duration(crossAt-k0) * step
	t.Logf("clip %.3fs, starts at frame %d: %v before the crossing (pre_capture %v, segment %v)", dur, k0, lead, cfg.PreCapture, cfg.Segment)
	if lead < cfg.PreCapture || lead > cfg.PreCapture+cfg.Segment {
		t.Fatalf("clip starts %v before the crossing, want %v to %v", lead, cfg.PreCapture, cfg.PreCapture+cfg.Segment)
	}
	// It runs from there to post_capture after the crossing.
	if want := (lead + cfg.PostCapture).Seconds(); math.Abs(dur-want) > 1 {
		t.Fatalf("clip lasts %.3fs, want %.3fs within 1s", dur, want)
	}
	if got := value(s.stats.clips.WithLabelValues("cam", "ok")); got != 1 {
		t.Fatalf("osprey_record_clips_total{result=ok} = %v", got)
	}
	if got := value(s.stats.drops.WithLabelValues("cam")); got != 0 {
		t.Fatalf("%v frames dropped", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "osprey_record_segment_bytes" && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge().GetValue() > 0 {
			found = true
		}
	}
	if !found {
		t.Fatal("osprey_record_segment_bytes{stream=cam} is not exported")
	}
}

// TestEventOlderThanBuffer asks for a clip of an event an hour old: the
// clip.ready carries no clip and says why.
func TestEventOlderThanBuffer(t *testing.T) {
	matcheck.Leaks(t)
	cfg := testConfig(t.TempDir())
	s, em, _ := newTestSink(t, cfg, nil)
	src := pattern(t, 160, 120)
	for k := range 30 {
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f.Captured = time.Now().Add(-1500 * time.Millisecond).Add(time.Duration(k) * 50 * time.Millisecond)
		if err := s.Write(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		f.Release()
	}
	old := crossing("cam", time.Now().Add(-time.Hour))
	// As the runner hands an emitted event: no image, no sequence.
	if err := s.Write(context.Background(), &stages.Frame{Stream: "cam", Events: []event.Event{old}}); err != nil {
		t.Fatal(err)
	}
	ev := em.next(t, 20*time.Second)
	if ev.ClipOf != old.ID || ev.Clip != "" || !strings.Contains(ev.ClipError, "older than the recording buffer") {
		t.Fatalf("got %+v, want clip_error about the buffer", ev)
	}
	t.Logf("clip_error: %s", ev.ClipError)
}

func frameThumb(t *testing.T, f *stages.Frame) []byte {
	t.Helper()
	m, err := picture.Mat(f)
	if err != nil {
		t.Fatal(err)
	}
	return thumb(m)
}
