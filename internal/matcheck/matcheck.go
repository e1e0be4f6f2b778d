// Package matcheck lets tests assert that every gocv.Mat they created was
// closed. The count is only available when built with the matprofile tag
// (go test -tags matprofile); without it Enabled is false and checks pass.
package matcheck

import "testing"

// Leaks fails t if the live Mat count is not back to start once the test ends.
// Call it at the start of a test: start := matcheck.Leaks(t) registers a
// cleanup that compares counts.
func Leaks(t testing.TB) {
	t.Helper()
	if !Enabled {
		return
	}
	start := Count()
	t.Cleanup(func() {
		if n := Count(); n != start {
			t.Errorf("gocv Mat leak: %d Mats live at start, %d at end", start, n)
		}
	})
}
