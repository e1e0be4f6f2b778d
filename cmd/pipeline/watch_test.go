package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/picture"
	"github.com/osprey-vision/osprey/sink/preview"
	"github.com/osprey-vision/osprey/stages"
)

const watchVideo = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// `pipeline watch` against a real preview sink fed real video: every
// viewer gets video and metadata, and the JSON summary says so.
func TestWatchReportsWhatViewersReceive(t *testing.T) {
	realpart.File(t, realpart.SampleVideo, watchVideo)
	vc, err := gocv.VideoCaptureFile(watchVideo)
	if err != nil {
		t.Fatalf("open %s: %v", watchVideo, err)
	}
	defer vc.Close()
	matcheck.Leaks(t)
	cfg := preview.Defaults()
	cfg.Listen = "127.0.0.1:0"
	s, err := preview.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			m := gocv.NewMat()
			if !vc.Read(&m) || m.Empty() {
				m.Close()
				vc.Set(gocv.VideoCapturePosFrames, 0)
				continue
			}
			f := stages.NewFrame("plaza", seq, picture.New(m))
			_ = s.Write(ctx, f)
			f.Release()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	defer func() { cancel(); wg.Wait() }()

	var stdout, stderr bytes.Buffer
	base := "http://" + s.Addr().String()
	code := runWatch(context.Background(), []string{"--url", base, "--viewers", "2", "--duration", "4s", "--interval", "1s", "--json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var sum watchSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary %q: %v", stdout.String(), err)
	}
	t.Logf("summary %+v", sum)
	if sum.Stream != "plaza" || len(sum.Viewers) != 2 || !sum.AllVideo || sum.MinFPS <= 0 || sum.MeanKbps <= 0 {
		t.Fatalf("summary %+v", sum)
	}
	for i, v := range sum.Viewers {
		if v.Meta == 0 || !v.Overlays {
			t.Errorf("viewer %d got no metadata: %+v", i, v)
		}
	}
	if !strings.Contains(stderr.String(), "every viewer has video after") || !strings.Contains(stderr.String(), "fps (slowest viewer") {
		t.Errorf("progress lines missing: %s", stderr.String())
	}
}

func TestWatchBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--viewers", "0"}, 2, "--viewers 0: use 1 to 64"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--url", "http://127.0.0.1:9", "--duration", "2s"}, 1, "is the pipeline running with a preview sink"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runWatch(context.Background(), c.args, &stdout, &stderr); code != c.code || !strings.Contains(stderr.String(), c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr.String(), c.code, c.msg)
		}
	}
}
