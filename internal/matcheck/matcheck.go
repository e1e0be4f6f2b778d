// Package matcheck counts live gocv Mats, so tests can assert that every Mat
// they created was closed and the soak run can watch the count stay flat.
//
// gocv counts Mats only when built with the matprofile tag (go test -tags
// matprofile, as scripts/test.sh runs everything); without it Count reports
// that the count is unknown and Leaks has nothing to compare. This is the one
// Mat-count helper: packages do not keep their own.
package matcheck

import "time"

// settle bounds how long Leaks waits for the count to come back: goroutines a
// Close abandoned (a reader stuck in a cgo call) may release their last Mat
// just after the test body returns.
const settle = 3 * time.Second

// T is the part of testing.TB that Leaks uses. Taking it instead of
// testing.TB keeps the testing package out of binaries that call Count.
type T interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
}

// Count returns the number of live gocv Mats and true, or 0 and false when
// the count is unknown (built without the matprofile tag).
func Count() (n int, ok bool) {
	if !Enabled {
		return 0, false
	}
	return count(), true
}

// Leaks fails t if the live Mat count is not back to its value at the call
// once the test and the cleanups registered after Leaks have run. Call it at
// the start of a test. Without the matprofile tag it checks nothing.
func Leaks(t T) {
	t.Helper()
	start, ok := Count()
	if !ok {
		return
	}
	t.Cleanup(func() {
		t.Helper()
		deadline := time.Now().Add(settle)
		n, _ := Count()
		for n != start && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			n, _ = Count()
		}
		if n != start {
			t.Errorf("gocv Mat leak: %d Mats live at start, %d at end (%s later)", start, n, settle)
		}
	})
}
