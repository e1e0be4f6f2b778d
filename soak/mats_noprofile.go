//go:build !matprofile

package soak

// matCount is -1 without -tags matprofile: gocv does not count Mats then.
func matCount() int { return -1 }
