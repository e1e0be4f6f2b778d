//go:build !matprofile

package matcheck

// Enabled reports whether Mat counting is compiled in (the matprofile tag).
const Enabled = false

// Count returns -1: Mat counting needs the matprofile build tag.
func Count() int { return -1 }
