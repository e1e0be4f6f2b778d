package infer

// #cgo CFLAGS: -O3
// #include "tfresize.h"
import "C"

import "unsafe"

// runTFResize calls the C kernel; resizeInto has checked the sizes.
func runTFResize(r *tfResizer, px []uint8, step int, t tfTarget) {
	var u8 *C.uint8_t
	var f32 *C.float
	if t.u8 != nil {
		u8 = (*C.uint8_t)(unsafe.Pointer(&t.u8[0]))
	} else {
		f32 = (*C.float)(unsafe.Pointer(&t.f32[0]))
	}
	C.osp_tf_resize((*C.uint8_t)(unsafe.Pointer(&px[0])), C.int(step), C.int(3*r.srcW),
		(*C.int32_t)(unsafe.Pointer(&r.col0[0])), (*C.int32_t)(unsafe.Pointer(&r.col1[0])), (*C.double)(unsafe.Pointer(&r.fx4[0])), (*C.float)(unsafe.Pointer(&r.fx4f[0])), C.int(r.w),
		(*C.int32_t)(unsafe.Pointer(&r.row0[0])), (*C.int32_t)(unsafe.Pointer(&r.row1[0])), (*C.double)(unsafe.Pointer(&r.fy[0])), C.int(r.h),
		(*C.uint8_t)(unsafe.Pointer(&r.scratch[0])), cbool(r.rgb),
		u8, f32, C.int(t.inW), C.int(t.plane), C.int(t.top), C.int(t.left), cbool(t.nchw),
		C.float(t.scale), C.float(t.shift), (*C.float)(unsafe.Pointer(&t.mean[0])), (*C.float)(unsafe.Pointer(&t.std[0])), cbool(t.norm))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
