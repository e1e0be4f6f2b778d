package matcheck

import (
	"fmt"
	"testing"

	"gocv.io/x/gocv"
)

// recorder is a T that keeps its cleanups and errors for the test to run and read.
type recorder struct {
	cleanups []func()
	errs     []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Cleanup(f func())          { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }
func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestLeaksSeesAnUnclosedMat(t *testing.T) {
	n, ok := Count()
	if ok != Enabled {
		t.Fatalf("Count ok = %v, want %v (Enabled)", ok, Enabled)
	}
	if !ok {
		if n != 0 {
			t.Errorf("unknown count = %d, want 0", n)
		}
		t.Log("built without -tags matprofile: Count is unknown and Leaks checks nothing")
		return
	}

	closed := &recorder{}
	Leaks(closed)
	m := gocv.NewMat()
	m.Close()
	closed.end()
	if len(closed.errs) != 0 {
		t.Errorf("closed Mat reported: %v", closed.errs)
	}

	leaked := &recorder{}
	Leaks(leaked)
	m = gocv.NewMat()
	leaked.end()
	m.Close()
	if len(leaked.errs) != 1 {
		t.Fatalf("unclosed Mat: errors %v, want one", leaked.errs)
	}
	if want := fmt.Sprintf("gocv Mat leak: %d Mats live at start, %d at end (3s later)", n, n+1); leaked.errs[0] != want {
		t.Errorf("error %q, want %q", leaked.errs[0], want)
	}
}
