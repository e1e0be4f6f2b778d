package preview

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// encoderNice is how much lower than the pipeline the encoder thread runs.
// When the detector needs every core, the kernel gives the CPU to inference
// and the preview drops frames (its slot keeps only the newest), instead of
// the encoder taking time from the detection path.
const encoderNice = 10

// lowerThreadPriority pins the calling goroutine to its OS thread and lowers
// that thread's priority (Linux priorities are per thread). Threads the
// encoder library starts from it inherit the lower priority. The goroutine
// must not return the thread to Go's pool: call it only from goroutines that
// live as long as their encoder, and unlock never (the thread exits with the
// goroutine).
func lowerThreadPriority() {
	runtime.LockOSThread()
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return
	}
	// Getpriority returns 20-nice on Linux.
	nice := 20 - prio
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), min(nice+encoderNice, 19))
}
