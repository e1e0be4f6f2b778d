// Package cvthreads sets the size of OpenCV's own thread pool (cv::setNumThreads),
// which gocv v0.31 does not expose.
//
// Osprey gets its parallelism from the pipeline: stages run side by side and
// ONNX Runtime has its own threads. OpenCV's pool (TBB here) parallelises each
// resize or colour conversion and its workers spin between calls, taking CPU
// from inference on the small machines Osprey targets; one thread is the
// default for that reason.
package cvthreads

// #cgo pkg-config: opencv4
// #cgo CXXFLAGS: --std=c++11
// #include "cvthreads.h"
import "C"

// Set sets OpenCV's thread count for parallel regions: 1 runs them on the
// calling thread, 0 restores OpenCV's default (all cores).
func Set(n int) {
	if n <= 0 {
		n = -1 // OpenCV: a negative value resets to the default
	}
	C.osp_cv_set_num_threads(C.int(n))
}

// Get returns OpenCV's current thread count.
func Get() int { return int(C.osp_cv_get_num_threads()) }
