//go:build !matprofile

package matcheck

// Enabled reports whether Mat counting is compiled in (the matprofile tag).
const Enabled = false

func count() int { return 0 }
