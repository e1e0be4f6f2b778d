package soak

/*
#include <malloc.h>
*/
import "C"

import "runtime/metrics"

// ReadCHeap returns the bytes the C allocator (glibc malloc) has handed out
// and not had back: small and large (mmapped) blocks together. It is what
// OpenCV's Mats and ONNX Runtime's tensors hold, without the free pages
// malloc keeps in its arenas, which RSS counts.
func ReadCHeap() uint64 {
	mi := C.mallinfo2()
	return uint64(mi.uordblks) + uint64(mi.hblkhd)
}

// ReadGoHeap returns the Go heap that survived the last garbage collection.
func ReadGoHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
