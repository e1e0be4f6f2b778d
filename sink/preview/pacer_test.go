package preview

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/matcheck"
)

func TestPacer(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	saturated := false
	// count feeds 3 s of a 30 fps source and counts frames taken and drops.
	count := func(p *pacer) (taken int, drops map[string]int) {
		drops = map[string]int{}
		for i := range 90 {
			ok, reason := p.take(t0.Add(time.Duration(i) * time.Second / 30))
			if ok {
				taken++
			} else {
				drops[reason]++
			}
		}
		return taken, drops
	}
	cases := []struct {
		name          string
		maxFPS, sat   float64
		saturated     bool
		taken         int
		dropReason    string
		nilSaturation bool
	}{
		{"no cap", 0, 5, false, 90, "", false},
		{"30 fps cap keeps a 30 fps source whole despite jitter", 30, 5, false, 90, "", false},
		{"15 fps cap", 15, 5, false, 45, dropFPSCap, false},
		{"saturated: 5 fps", 30, 5, true, 15, dropDetectorBusy, false},
		{"saturated_max_fps 0 never lowers the rate", 30, 0, true, 90, "", false},
		{"saturated_max_fps above max_fps does not raise it", 10, 20, true, 30, dropFPSCap, false},
		{"no saturation function", 30, 5, false, 90, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			saturated = c.saturated
			p := &pacer{maxFPS: c.maxFPS, satFPS: c.sat, saturated: func() bool { return saturated }}
			if c.nilSaturation {
				p.saturated = nil
			}
			taken, drops := count(p)
			if taken != c.taken {
				t.Fatalf("took %d of 90 frames, want %d (drops %v)", taken, c.taken, drops)
			}
			if c.dropReason != "" && drops[c.dropReason] != 90-c.taken {
				t.Fatalf("drops %v, want %d %q", drops, 90-c.taken, c.dropReason)
			}
		})
	}
}

// While the pipeline reports its detector saturated, a watched stream is
// encoded at saturated_max_fps and the rest counted as detector_busy; when
// it no longer is, the full rate comes back.
func TestSaturationLowersPreviewRate(t *testing.T) {
	c := loadClip(t)
	matcheck.Leaks(t)
	s, base := startSink(t, testConfig())
	var saturated atomic.Bool
	s.SetSaturation(saturated.Load)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.feed(ctx, s, "cam", 25) })
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, 5*time.Second, "the stream's first frame", func() bool { return s.lookup("cam") != nil })
	v := dial(t, base, "cam", "", nil)
	defer v.pc.Close()
	st := s.lookup("cam")
	waitFor(t, 20*time.Second, "video at the viewer", func() bool { return st.snapshot().Encoded > 3 })

	encodedIn := func(d time.Duration) (encoded, busy uint64) {
		before := st.snapshot()
		time.Sleep(d)
		after := st.snapshot()
		return after.Encoded - before.Encoded, after.Drops[dropDetectorBusy] - before.Drops[dropDetectorBusy]
	}
	saturated.Store(true)
	encodedIn(300 * time.Millisecond) // let the last full-rate frame pass
	enc, busy := encodedIn(2 * time.Second)
	// 5 fps with the pacer's 10 % slack is at most one frame per 180 ms of
	// capture time, however fast or slow this machine runs.
	if enc > 2000/180+1 || busy == 0 {
		t.Fatalf("saturated: %d frames encoded and %d detector_busy drops in 2 s, want at most %d encoded and some drops", enc, busy, 2000/180+1)
	}
	saturated.Store(false)
	encFull, _ := encodedIn(2 * time.Second)
	if encFull <= enc+5 {
		t.Fatalf("after saturation: %d frames encoded in 2 s, no more than the %d while saturated", encFull, enc)
	}
	t.Logf("2 s of a 25 fps stream: %d frames encoded while saturated (%d detector_busy drops), %d after", enc, busy, encFull)
}
