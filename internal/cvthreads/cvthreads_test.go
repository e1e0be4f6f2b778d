package cvthreads

import "testing"

func TestSetAndGet(t *testing.T) {
	old := Get()
	defer Set(old)
	Set(1)
	if got := Get(); got != 1 {
		t.Fatalf("after Set(1), Get() = %d", got)
	}
	Set(0)
	if got := Get(); got < 1 {
		t.Fatalf("after Set(0) (OpenCV default), Get() = %d, want >= 1", got)
	}
}
