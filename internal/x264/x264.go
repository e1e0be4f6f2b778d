// Package x264 drives libx264 directly (cgo): ultrafast, zerolatency,
// constrained baseline (no B-frames: one picture in, one access unit out),
// Annex B output with SPS/PPS before every IDR. The preview (WebRTC) and the
// recorder (MPEG-TS segments) both encode through it, so its threads and
// logging are the caller's to set.
package x264

/*
#cgo pkg-config: x264
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <x264.h>

typedef struct {
	x264_t *h;
	x264_picture_t pic;
} osp_x264;

static osp_x264 *osp_x264_new(int w, int h, int kbps, int fps, int keyint, int threads, int *err) {
	x264_param_t p;
	if (x264_param_default_preset(&p, "ultrafast", "zerolatency") < 0) { *err = -1; return NULL; }
	p.i_log_level = X264_LOG_ERROR;   // x264 prints stats at info level otherwise
	p.i_threads = threads;
	p.i_width = w;
	p.i_height = h;
	p.i_csp = X264_CSP_I420;
	p.i_fps_num = fps;
	p.i_fps_den = 1;
	p.i_keyint_max = keyint;
	p.b_repeat_headers = 1;           // SPS/PPS before every IDR: viewers join mid-stream
	p.b_annexb = 1;                   // start codes, as pion's H.264 payloader expects
	p.rc.i_rc_method = X264_RC_ABR;
	p.rc.i_bitrate = kbps;
	p.rc.i_vbv_max_bitrate = kbps;
	p.rc.i_vbv_buffer_size = kbps / 2; // half a second of buffer keeps frame sizes even
	if (x264_param_apply_profile(&p, "baseline") < 0) { *err = -2; return NULL; }
	osp_x264 *e = calloc(1, sizeof(osp_x264));
	if (!e) { *err = -3; return NULL; }
	e->h = x264_encoder_open(&p);
	if (!e->h) { free(e); *err = -4; return NULL; }
	x264_picture_init(&e->pic);
	e->pic.img.i_csp = X264_CSP_I420;
	e->pic.img.i_plane = 3;
	return e;
}

// osp_x264_encode encodes one picture; *out points into x264's buffer, valid
// until the next call.
static int osp_x264_encode(osp_x264 *e, uint8_t *y, uint8_t *u, uint8_t *v, int ystride, int cstride,
		int64_t pts, int force_kf, uint8_t **out) {
	e->pic.img.plane[0] = y;
	e->pic.img.plane[1] = u;
	e->pic.img.plane[2] = v;
	e->pic.img.i_stride[0] = ystride;
	e->pic.img.i_stride[1] = cstride;
	e->pic.img.i_stride[2] = cstride;
	e->pic.i_pts = pts;
	e->pic.i_type = force_kf ? X264_TYPE_IDR : X264_TYPE_AUTO;
	x264_nal_t *nals;
	int n;
	x264_picture_t pic_out;
	int size = x264_encoder_encode(e->h, &nals, &n, &e->pic, &pic_out);
	if (size > 0) *out = nals[0].p_payload; // all NALs of a call are contiguous
	return size;
}

static void osp_x264_free(osp_x264 *e) {
	x264_encoder_close(e->h);
	free(e);
}
*/
import "C"

import (
	"fmt"
	"image"
	"unsafe"
)

// Options are an encoder's settings, fixed at New.
type Options struct {
	// Width and Height are the picture size in pixels (even numbers).
	Width, Height int
	// Kbps is the average bitrate in kbit/s (also the VBV cap).
	Kbps int
	// FPS is the nominal frame rate, for rate control (<= 0: 30).
	FPS int
	// KeyframeInterval is the longest gap between key frames, in frames.
	KeyframeInterval int
	// Threads is how many threads libx264 may use.
	Threads int
}

// Encoder is one libx264 encoder. It is not safe for concurrent use.
type Encoder struct {
	e       *C.osp_x264
	w, h    int
	pts     int64
	forceKF bool
}

// New opens an encoder for o.Width x o.Height I420 pictures.
func New(o Options) (*Encoder, error) {
	fps := o.FPS
	if fps <= 0 {
		fps = 30
	}
	var rc C.int
	e := C.osp_x264_new(C.int(o.Width), C.int(o.Height), C.int(o.Kbps), C.int(fps), C.int(o.KeyframeInterval),
		C.int(o.Threads), &rc)
	if e == nil {
		return nil, fmt.Errorf("x264: libx264 cannot open an H.264 encoder for %dx%d (error %d)", o.Width, o.Height, int(rc))
	}
	return &Encoder{e: e, w: o.Width, h: o.Height}, nil
}

// Encode compresses one picture and returns its access unit (Annex B NAL
// units), or nil when the encoder produced nothing for it. The slice is the
// caller's.
func (x *Encoder) Encode(img *image.YCbCr) ([]byte, error) {
	if x.e == nil {
		return nil, fmt.Errorf("x264: encoder is closed")
	}
	if img.Rect.Dx() != x.w || img.Rect.Dy() != x.h {
		return nil, fmt.Errorf("x264: picture is %dx%d, the encoder was opened for %dx%d", img.Rect.Dx(), img.Rect.Dy(), x.w, x.h)
	}
	kf := C.int(0)
	if x.forceKF {
		kf = 1
	}
	var out *C.uint8_t
	n := C.osp_x264_encode(x.e, (*C.uint8_t)(unsafe.Pointer(&img.Y[0])), (*C.uint8_t)(unsafe.Pointer(&img.Cb[0])),
		(*C.uint8_t)(unsafe.Pointer(&img.Cr[0])), C.int(img.YStride), C.int(img.CStride), C.int64_t(x.pts), kf, &out)
	x.pts++
	if n < 0 {
		return nil, fmt.Errorf("x264: libx264 encode failed (error %d)", int(n))
	}
	x.forceKF = false
	if n == 0 {
		return nil, nil
	}
	return C.GoBytes(unsafe.Pointer(out), n), nil
}

// ForceKeyFrame makes the next picture an IDR frame.
func (x *Encoder) ForceKeyFrame() { x.forceKF = true }

// Close frees the encoder; safe to call twice.
func (x *Encoder) Close() error {
	if x.e != nil {
		C.osp_x264_free(x.e)
		x.e = nil
	}
	return nil
}
