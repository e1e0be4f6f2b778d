//go:build !matprofile

package capture

// matCount is 0 without -tags matprofile (gocv only counts Mats with it).
func matCount() int { return 0 }
