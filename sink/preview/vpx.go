package preview

/*
#cgo pkg-config: vpx
#include <stdlib.h>
#include <vpx/vpx_encoder.h>
#include <vpx/vp8cx.h>

typedef struct {
	vpx_codec_ctx_t ctx;
	vpx_codec_enc_cfg_t cfg;
	vpx_image_t img;
	int open;
} osp_vp8;

static osp_vp8 *osp_vp8_new(int w, int h, int kbps, int kf_max, int speed, int threads, int *err) {
	osp_vp8 *e = calloc(1, sizeof(osp_vp8));
	if (!e) { *err = -1; return NULL; }
	vpx_codec_iface_t *iface = vpx_codec_vp8_cx();
	if ((*err = vpx_codec_enc_config_default(iface, &e->cfg, 0)) != 0) { free(e); return NULL; }
	e->cfg.g_w = w;
	e->cfg.g_h = h;
	e->cfg.g_timebase.num = 1;
	e->cfg.g_timebase.den = 90000;
	e->cfg.g_threads = threads;
	e->cfg.g_lag_in_frames = 0;           // out as soon as in
	e->cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
	e->cfg.rc_end_usage = VPX_CBR;
	e->cfg.rc_target_bitrate = kbps;
	e->cfg.rc_min_quantizer = 4;
	e->cfg.rc_max_quantizer = 56;
	e->cfg.rc_dropframe_thresh = 0;       // the sink decides what to drop
	e->cfg.rc_buf_sz = 1000;
	e->cfg.rc_buf_initial_sz = 500;
	e->cfg.rc_buf_optimal_sz = 600;
	e->cfg.kf_mode = VPX_KF_AUTO;
	e->cfg.kf_max_dist = kf_max;
	if ((*err = vpx_codec_enc_init(&e->ctx, iface, &e->cfg, 0)) != 0) { free(e); return NULL; }
	e->open = 1;
	vpx_codec_control(&e->ctx, VP8E_SET_CPUUSED, speed);
	vpx_codec_control(&e->ctx, VP8E_SET_NOISE_SENSITIVITY, 0);
	vpx_codec_control(&e->ctx, VP8E_SET_STATIC_THRESHOLD, 1);
	vpx_img_wrap(&e->img, VPX_IMG_FMT_I420, w, h, 1, (unsigned char *)1); // planes set per frame
	return e;
}

static int osp_vp8_encode(osp_vp8 *e, unsigned char *y, unsigned char *u, unsigned char *v,
		int ystride, int cstride, long long pts, int force_kf) {
	e->img.planes[VPX_PLANE_Y] = y;
	e->img.planes[VPX_PLANE_U] = u;
	e->img.planes[VPX_PLANE_V] = v;
	e->img.stride[VPX_PLANE_Y] = ystride;
	e->img.stride[VPX_PLANE_U] = cstride;
	e->img.stride[VPX_PLANE_V] = cstride;
	return vpx_codec_encode(&e->ctx, &e->img, pts, 1, force_kf ? VPX_EFLAG_FORCE_KF : 0, VPX_DL_REALTIME);
}

// osp_vp8_next returns the next compressed frame packet, or NULL.
static const vpx_codec_cx_pkt_t *osp_vp8_next(osp_vp8 *e, vpx_codec_iter_t *it) {
	const vpx_codec_cx_pkt_t *p;
	while ((p = vpx_codec_get_cx_data(&e->ctx, it)) != NULL) {
		if (p->kind == VPX_CODEC_CX_FRAME_PKT) return p;
	}
	return NULL;
}
static void *osp_pkt_buf(const vpx_codec_cx_pkt_t *p) { return p->data.frame.buf; }
static size_t osp_pkt_sz(const vpx_codec_cx_pkt_t *p) { return p->data.frame.sz; }

static void osp_vp8_free(osp_vp8 *e) {
	if (e->open) vpx_codec_destroy(&e->ctx);
	free(e);
}
*/
import "C"

import (
	"fmt"
	"image"
	"time"
	"unsafe"
)

// vp8Encoder drives libvpx directly rather than through a wrapper so the
// real-time speed (VP8E_SET_CPUUSED) can be set: at speed 8 it costs a
// fraction of the default speed 0 on a small CPU.
type vp8Encoder struct {
	e       *C.osp_vp8
	w, h    int
	start   time.Time
	forceKF bool
}

func newVP8Encoder(cfg Config, w, h int) (*vp8Encoder, error) {
	var rc C.int
	e := C.osp_vp8_new(C.int(w), C.int(h), C.int(cfg.Bitrate/1000), C.int(cfg.KeyframeInterval),
		C.int(cfg.VP8Speed), C.int(cfg.EncoderThreads), &rc)
	if e == nil {
		return nil, fmt.Errorf("preview: libvpx cannot open a VP8 encoder for %dx%d (error %d)", w, h, int(rc))
	}
	return &vp8Encoder{e: e, w: w, h: h, start: time.Now()}, nil
}

func (v *vp8Encoder) Encode(img *image.YCbCr) ([]byte, error) {
	if img.Rect.Dx() != v.w || img.Rect.Dy() != v.h {
		return nil, fmt.Errorf("preview: picture is %dx%d, the encoder was opened for %dx%d", img.Rect.Dx(), img.Rect.Dy(), v.w, v.h)
	}
	// libvpx reads the planes only during the call (no lag frames), so
	// passing them as call arguments is within cgo's pointer rules.
	pts := C.longlong(time.Since(v.start).Seconds() * videoClockRate)
	kf := C.int(0)
	if v.forceKF {
		kf = 1
	}
	if rc := C.osp_vp8_encode(v.e, (*C.uchar)(unsafe.Pointer(&img.Y[0])), (*C.uchar)(unsafe.Pointer(&img.Cb[0])),
		(*C.uchar)(unsafe.Pointer(&img.Cr[0])), C.int(img.YStride), C.int(img.CStride), pts, kf); rc != 0 {
		return nil, fmt.Errorf("preview: libvpx encode failed (error %d)", int(rc))
	}
	v.forceKF = false
	var out []byte
	var it C.vpx_codec_iter_t
	for p := C.osp_vp8_next(v.e, &it); p != nil; p = C.osp_vp8_next(v.e, &it) {
		out = append(out, unsafe.Slice((*byte)(C.osp_pkt_buf(p)), int(C.osp_pkt_sz(p)))...)
	}
	return out, nil
}

func (v *vp8Encoder) ForceKeyFrame() { v.forceKF = true }

func (v *vp8Encoder) Close() error {
	if v.e != nil {
		C.osp_vp8_free(v.e)
		v.e = nil
	}
	return nil
}
