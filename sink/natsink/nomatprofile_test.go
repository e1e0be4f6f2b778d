//go:build !matprofile

package natsink

// matCount is -1 without -tags matprofile: the Mat leak check is skipped.
func matCount() int { return -1 }
