//go:build !linux

package preview

// lowerThreadPriority is a no-op where thread priorities are not per thread.
func lowerThreadPriority() {}
