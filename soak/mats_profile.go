//go:build matprofile

package soak

import "gocv.io/x/gocv"

// matCount returns the live gocv Mat count (built with -tags matprofile).
func matCount() int { return gocv.MatProfile.Count() }
