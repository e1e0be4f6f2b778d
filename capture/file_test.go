package capture

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/stages"
)

const dataDir = "/usr/share/doc/opencv-doc/examples/data/"

var (
	vtest    = dataDir + "vtest.avi"
	megaBugy = dataDir + "Megamind_bugy.avi"
)

// readAll reads until end of stream and returns the frame count and size.
func readAll(t *testing.T, src stages.Source, limit int) (n, w, h int, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last uint64
	for n < limit {
		f, err := src.Read(ctx)
		if err != nil {
			return n, w, h, err
		}
		if f.Seq != last+1 {
			t.Errorf("seq %d after %d", f.Seq, last)
		}
		last = f.Seq
		w, h = f.Width, f.Height
		f.Release()
		n++
	}
	return n, w, h, nil
}

func TestFileVtest(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, vtest)
	matcheck.Leaks(t)
	var states []State
	src := mustNew(t, Config{ID: "v", URL: "file://" + vtest}, func(s State) { states = append(states, s) })
	defer src.Close(context.Background())
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, w, h, err := readAll(t, src, 10000)
	if !errors.Is(err, stages.ErrEndOfStream) {
		t.Fatalf("after %d frames: %v, want ErrEndOfStream", n, err)
	}
	// vtest.avi: 795 frames of 768x576 (ffprobe agrees).
	if n != 795 || w != 768 || h != 576 {
		t.Errorf("read %d frames of %dx%d, want 795 of 768x576", n, w, h)
	}
	if len(states) != 2 || !states[0].Up || states[1].Up || states[1].Reason != "end of stream" {
		t.Errorf("states %+v, want up then down(end of stream)", states)
	}
}

func TestFileLoopWraps(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, vtest)
	matcheck.Leaks(t)
	var ups int
	src := mustNew(t, Config{ID: "v", URL: vtest, Loop: true}, func(s State) {
		if s.Up {
			ups++
		}
	})
	defer src.Close(context.Background())
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, _, _, err := readAll(t, src, 795+20)
	if err != nil || n != 815 {
		t.Fatalf("looping read: %d frames, %v", n, err)
	}
	if ups != 1 {
		t.Errorf("%d up transitions across a loop wrap, want 1", ups)
	}
}

// A file's frames carry their position on the file's own clock, counting on
// across a loop wrap, however fast they are read.
func TestFileMediaTime(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, vtest)
	matcheck.Leaks(t)
	src := mustNew(t, Config{ID: "v", URL: vtest, Loop: true}, nil)
	defer src.Close(context.Background())
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 800; i++ {
		f, err := src.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pos := f.Media.Sub(time.Unix(0, 0))
		f.Release()
		// vtest.avi is 10 fps: frame k (from 0) is at k x 100 ms; 795 frames per loop.
		if want := time.Duration(i) * 100 * time.Millisecond; pos != want {
			t.Fatalf("frame %d at %v on the file's clock, want %v", i, pos, want)
		}
	}
}

func TestFileRealtimePacing(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, vtest)
	matcheck.Leaks(t)
	src := mustNew(t, Config{ID: "v", URL: vtest, Realtime: true}, nil)
	defer src.Close(context.Background())
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, _, _, err := readAll(t, src, 31)
	if err != nil {
		t.Fatal(err)
	}
	// vtest.avi is 10 fps: frames 1..31 span 30 intervals = 3 s. Only a lower
	// bound is checked (a loaded machine may be slower, never faster).
	el := time.Since(start)
	if want := time.Duration(float64(n-1) / 10 * float64(time.Second)); el < want*8/10 {
		t.Errorf("%d frames in %s, want at least %s at 10 fps", n, el, want*8/10)
	}
}

func TestFileDamaged(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, megaBugy)
	matcheck.Leaks(t)
	src := mustNew(t, Config{ID: "m", URL: megaBugy}, nil)
	defer src.Close(context.Background())
	if err := src.Connect(context.Background()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	n, w, h, err := readAll(t, src, 100000)
	if !errors.Is(err, stages.ErrEndOfStream) {
		t.Fatalf("after %d frames: %v, want a clean ErrEndOfStream", n, err)
	}
	if n == 0 || w == 0 || h == 0 {
		t.Errorf("read %d frames (%dx%d) from the damaged file, want some", n, w, h)
	}
	t.Logf("Megamind_bugy.avi: %d frames of %dx%d before the end", n, w, h)
}

func TestFileTruncated(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, vtest)
	matcheck.Leaks(t)
	data, err := os.ReadFile(vtest)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cut.avi")
	if err := os.WriteFile(p, data[:len(data)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	src := mustNew(t, Config{ID: "c", URL: p}, nil)
	defer src.Close(context.Background())
	if err := src.Connect(context.Background()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	n, _, _, err := readAll(t, src, 10000)
	if !errors.Is(err, stages.ErrEndOfStream) {
		t.Fatalf("after %d frames: %v, want ErrEndOfStream", n, err)
	}
	if n == 0 || n >= 795 {
		t.Errorf("read %d frames from a third of vtest.avi, want some but fewer than 795", n)
	}
	t.Logf("truncated vtest.avi (1/3): %d frames", n)
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.avi")
	if err := os.WriteFile(junk, []byte("this is not a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, url, err string }{
		{"missing", "file:///nonexistent/x.avi", `capture: stream "f": file /nonexistent/x.avi does not exist (check the url path)`},
		{"not a video", junk, `capture: stream "f": cannot open ` + junk + `: open failed: opencv could not open it (is it a video FFmpeg can decode?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := mustNew(t, Config{ID: "f", URL: tc.url}, nil)
			defer src.Close(context.Background())
			err := src.Connect(context.Background())
			if err == nil || err.Error() != tc.err {
				t.Fatalf("Connect: %v\nwant %s", err, tc.err)
			}
			if errors.Is(err, stages.ErrNotConnected) {
				t.Error("a bad file must not be retried (ErrNotConnected)")
			}
		})
	}
}

func TestMaxSize(t *testing.T) {
	matcheck.Leaks(t)
	src := mustNew(t, Config{ID: "big", URL: "test://?w=640&h=480", MaxWidth: 320, MaxHeight: 240}, nil)
	defer src.Close(context.Background())
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := src.Read(context.Background())
	want := `capture: stream "big": test://?w=640&h=480: frame 640x480 exceeds max_width x max_height 320x240 (raise max_width/max_height or scale the source down)`
	if err == nil || err.Error() != want {
		t.Fatalf("Read: %v\nwant %s", err, want)
	}
}
