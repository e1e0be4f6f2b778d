package infer

import (
	"runtime"
	"testing"
)

// A returned input is reused even across garbage collections (a sync.Pool
// would drop it and the next frame would allocate a new tensor).
func TestInputPoolKeepsInputsAcrossGC(t *testing.T) {
	p := NewInputPoolU8(300 * 300 * 3)
	a, b := p.Get(), p.Get()
	if len(a.U8) != 300*300*3 || a.Data != nil || a == b {
		t.Fatalf("inputs: %d uint8, %d float, same %v", len(a.U8), len(a.Data), a == b)
	}
	a.Release()
	b.Release()
	b.Release() // a second release is a no-op
	runtime.GC()
	runtime.GC()
	if n := testing.AllocsPerRun(20, func() {
		x, y := p.Get(), p.Get()
		runtime.GC()
		x.Release()
		y.Release()
	}); n != 0 {
		t.Fatalf("Get allocates %g times per two inputs after a GC", n)
	}
	if got := p.Get(); got != a && got != b {
		t.Fatal("the pool made a new input while it held two")
	}
}
