//go:build matprofile

package matcheck

import "gocv.io/x/gocv"

// Enabled reports whether Mat counting is compiled in (the matprofile tag).
const Enabled = true

// Count returns the number of live Mats.
func Count() int { return gocv.MatProfile.Count() }
