//go:build matprofile

package matcheck

import "gocv.io/x/gocv"

// Enabled reports whether Mat counting is compiled in (the matprofile tag).
const Enabled = true

func count() int { return gocv.MatProfile.Count() }
