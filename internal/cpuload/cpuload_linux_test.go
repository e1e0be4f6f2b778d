package cpuload

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	got, err := parse([]byte("cpu  100 5 50 800 40 3 2 10 0 0\ncpu0 50 2 25 400 20 1 1 5 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := times{busy: (100 + 5 + 50 + 3 + 2 + 10) * 10 * time.Millisecond, total: 1010 * 10 * time.Millisecond}
	if got != want {
		t.Fatalf("parse = %+v, want %+v", got, want)
	}
	if _, err := parse([]byte("intr 1 2 3\n")); err == nil {
		t.Fatal("a file without the cpu line parsed")
	}
	if _, err := parse([]byte("cpu 1 x 3\n")); err == nil {
		t.Fatal("a non-numeric field parsed")
	}
}

// Spinning every CPU for a while shows as busy; a first call never reports.
func TestBusyFollowsLoad(t *testing.T) {
	var s Sampler
	if _, ok := s.Busy(); ok {
		t.Fatal("the first call reported a fraction")
	}
	var wg sync.WaitGroup
	stop := time.Now().Add(300 * time.Millisecond)
	for range runtime.NumCPU() {
		wg.Go(func() {
			for time.Now().Before(stop) {
			}
		})
	}
	wg.Wait()
	frac, ok := s.Busy()
	if !ok {
		t.Fatal("no fraction after 300 ms")
	}
	// Every CPU spun for the whole window; allow for the scheduler and the
	// machine's other tenants, not for an idle reading.
	if frac < 0.6 {
		t.Fatalf("busy %.2f with every CPU spinning", frac)
	}
	t.Logf("busy %.2f with every CPU spinning", frac)
}
