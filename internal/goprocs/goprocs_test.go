package goprocs

import (
	"runtime"
	"testing"
)

func TestReserveAddsToTheDefault(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	defer Reserve(0)
	base := Reserve(0)
	if base != runtime.GOMAXPROCS(0) || base < 1 {
		t.Fatalf("Reserve(0) = %d, GOMAXPROCS %d", base, runtime.GOMAXPROCS(0))
	}
	if got := Reserve(2); got != base+2 || runtime.GOMAXPROCS(0) != base+2 {
		t.Fatalf("Reserve(2) = %d, GOMAXPROCS %d, want %d", got, runtime.GOMAXPROCS(0), base+2)
	}
	if Cores() != base || !Spare() {
		t.Fatalf("after Reserve(2): Cores() = %d (want the default %d), Spare() = %v", Cores(), base, Spare())
	}
	// Not cumulative: a second pipeline in the process sizes from the
	// default again.
	if got := Reserve(1); got != base+1 {
		t.Fatalf("Reserve(1) after Reserve(2) = %d, want %d", got, base+1)
	}
	if got := Reserve(0); got != base || Spare() {
		t.Fatalf("Reserve(0) = %d (want the default %d), Spare() = %v", got, base, Spare())
	}
}

func TestReserveLeavesAnExplicitSetting(t *testing.T) {
	t.Setenv("GOMAXPROCS", "3")
	old := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(old)
	if got := Reserve(4); got != 3 || runtime.GOMAXPROCS(0) != 3 || Spare() {
		t.Fatalf("Reserve(4) with GOMAXPROCS=3 in the environment = %d, GOMAXPROCS %d, Spare() %v", got, runtime.GOMAXPROCS(0), Spare())
	}
}
