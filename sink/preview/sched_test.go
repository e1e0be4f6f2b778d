package preview

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/matcheck"
	"github.com/osprey-vision/osprey/internal/sched"
)

// TestEncodersRunInBackground: the WebRTC encode loop and an MJPEG client's
// encoder run through the pipeline's background scheduling, and the kernel
// reports their threads as SCHED_IDLE while they encode.
func TestEncodersRunInBackground(t *testing.T) {
	c := loadClip(t)
	matcheck.Leaks(t)
	s, err := New(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	classes := map[int]sched.Class{} // thread -> class, read on the thread
	s.background = func(fn func()) {
		sched.Run(sched.Policy{Class: sched.Idle}, func(err error) {
			if err != nil {
				t.Errorf("background: %v", err)
			}
			in, err := sched.Thread(sched.TID())
			if err != nil {
				t.Errorf("read back: %v", err)
			}
			mu.Lock()
			classes[in.TID] = in.Class
			mu.Unlock()
			fn()
		})
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.feed(ctx, s, "cam", 25) })
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, 5*time.Second, "stream", func() bool { return s.lookup("cam") != nil })

	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, "GET", "http://"+s.Addr().String()+"/mjpeg/cam", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.ReadFull(res.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(classes) != 2 {
		t.Fatalf("background threads %v: want the encode loop's and the MJPEG client's", classes)
	}
	for tid, c := range classes {
		if c != sched.Idle {
			t.Errorf("thread %d is %s, want idle", tid, c)
		}
	}
}
