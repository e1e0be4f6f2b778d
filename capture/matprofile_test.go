//go:build matprofile

package capture

import "gocv.io/x/gocv"

// matCount is the number of live Mats.
func matCount() int { return gocv.MatProfile.Count() }
