// The TensorFlow resize kernel (see tfresize.h). Each output pixel's two
// source pixels in the two source rows are gathered as 32-bit words (B, G,
// R and a zero byte) into four contiguous rows, so the arithmetic runs on
// arrays the compiler vectorises; the spare lane is computed and dropped,
// and the channels are put in the model's order when the pixels are
// written. Contraction into multiply-adds is off because it would round
// differently from TF.js (cgo does not take -ffp-contract as a flag).
#pragma GCC optimize("fp-contract=off")
#include <stddef.h>
#include <string.h>
#include "tfresize.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OSP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OSP_CLONES
#endif

OSP_CLONES
static void blend(const uint8_t *restrict a, const uint8_t *restrict b, const uint8_t *restrict c,
                  const uint8_t *restrict d, const double *restrict fx, double fy, float *restrict v, int n) {
	for (int i = 0; i < n; i++) {
		double f = fx[i];
		double t = (double)a[i] + ((double)b[i] - (double)a[i]) * f;
		double u = (double)c[i] + ((double)d[i] - (double)c[i]) * f;
		v[i] = (float)(t + (u - t) * fy);
	}
}

// The distance from a rounding boundary below which blend_u8's float
// arithmetic (at most about 3e-4 off the double value for 8-bit inputs)
// could round the other way; those values are recomputed in double.
#define OSP_NEAR (1.0f / 256)

// exact_u8 is one value of blend rounded to the nearest integer.
static uint8_t exact_u8(double a, double b, double c, double d, double fx, double fy) {
	double t = a + (b - a) * fx;
	double u = c + (d - c) * fx;
	float v = (float)(t + (u - t) * fy);
	return (uint8_t)(int)(v + 0.5f);
}

// blend_u8 is blend rounded to the nearest integer for uint8 inputs, in
// float (twice the lanes of double, and no conversions between the two).
// It marks in near the values too close to a rounding boundary for float
// to decide, and returns whether there were any.
OSP_CLONES
static int blend_u8(const uint8_t *restrict a, const uint8_t *restrict b, const uint8_t *restrict c,
                    const uint8_t *restrict d, const float *restrict fx, float fy, uint8_t *restrict q,
                    uint8_t *restrict near, int n) {
	int any = 0;
	for (int i = 0; i < n; i++) {
		float f = fx[i];
		float t = (float)a[i] + ((float)b[i] - (float)a[i]) * f;
		float u = (float)c[i] + ((float)d[i] - (float)c[i]) * f;
		float r = t + (u - t) * fy + 0.5f;
		int k = (int)r;
		float e = r - (float)k;
		int m = (e < OSP_NEAR) | (e > 1.0f - OSP_NEAR);
		q[i] = (uint8_t)k;
		near[i] = (uint8_t)m;
		any |= m;
	}
	return any;
}

static inline uint32_t load32(const uint8_t *p) {
	uint32_t w;
	memcpy(&w, p, 4);
	return w;
}

static inline uint64_t load64(const uint8_t *p) {
	uint64_t w;
	memcpy(&w, p, 8);
	return w;
}

// pix3 reads the three bytes at p into a word, B in the low byte.
static inline uint32_t pix3(const uint8_t *p) {
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

// pair reads the lo and hi pixel of one output column from row r.
static inline void pair(const uint8_t *r, int row_bytes, int o0, int o1, uint32_t *lo, uint32_t *hi) {
	if (o1 == o0 + 3 && o0 + 8 <= row_bytes) {  // neighbours: one load
		uint64_t q = load64(r + o0);
		*lo = (uint32_t)q & 0xffffff, *hi = (uint32_t)(q >> 24) & 0xffffff;
	} else if (o0 + 4 <= row_bytes && o1 + 4 <= row_bytes) {
		*lo = load32(r + o0) & 0xffffff, *hi = load32(r + o1) & 0xffffff;
	} else {  // the row's last pixel
		*lo = pix3(r + o0), *hi = pix3(r + o1);
	}
}

// gather fills a, b (row t) and c, d (row u) with each output column's two
// source pixels, B, G, R and a zero byte.
static void gather(const uint8_t *t, const uint8_t *u, int row_bytes, const int32_t *col0, const int32_t *col1,
                   int w, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d) {
	for (int x = 0; x < w; x++) {
		int o0 = col0[x], o1 = col1[x];
		pair(t, row_bytes, o0, o1, a + x, b + x);
		pair(u, row_bytes, o0, o1, c + x, d + x);
	}
}

// rgb3 is the B, G, R word w as R, G, B.
static inline uint32_t rgb3(uint32_t w) { return __builtin_bswap32(w << 8); }

// pack writes the w four-byte pixels of q as three-byte ones.
static void pack(const uint8_t *q, uint8_t *o, int w, int rgb) {
	for (int x = 0; x + 1 < w; x++) {  // four bytes, the last overwritten by the next pixel
		uint32_t p = load32(q + 4 * x);
		if (rgb) p = rgb3(p);
		memcpy(o + 3 * x, &p, 4);
	}
	uint32_t p = load32(q + 4 * (w - 1));
	if (rgb) p = rgb3(p);
	memcpy(o + 3 * (w - 1), &p, 3);
}

void osp_tf_resize(const uint8_t *px, int step, int row_bytes,
                   const int32_t *col0, const int32_t *col1, const double *fx4, const float *fx4f, int w,
                   const int32_t *row0, const int32_t *row1, const double *fy, int h,
                   uint8_t *scratch, int rgb,
                   uint8_t *out_u8, float *out_f32, int in_w, int plane, int top, int left, int nchw,
                   float scale, float shift, const float *mean, const float *std, int norm) {
	int n = 4 * w;
	uint32_t *a = (uint32_t *)scratch, *b = a + w, *c = b + w, *d = c + w;
	float *v = (float *)(d + w);
	uint8_t *q = (uint8_t *)(v + n), *near = q + n;
	const uint8_t *a8 = (const uint8_t *)a, *b8 = (const uint8_t *)b, *c8 = (const uint8_t *)c, *d8 = (const uint8_t *)d;
	int identity = scale == 1.0f && shift == 0.0f && !norm;
	for (int y = 0; y < h; y++) {
		gather(px + (size_t)row0[y] * step, px + (size_t)row1[y] * step, row_bytes, col0, col1, w, a, b, c, d);
		size_t at = (size_t)(top + y) * in_w + left;
		if (out_u8 && !nchw) {
			if (blend_u8(a8, b8, c8, d8, fx4f, (float)fy[y], q, near, n)) {
				for (int i = 0; i < n; i += 4) {  // n is 4*w: one word a pixel
					if (!load32(near + i)) continue;
					for (int j = i; j < i + 4; j++) {
						if (near[j]) q[j] = exact_u8(a8[j], b8[j], c8[j], d8[j], fx4[j], fy[y]);
					}
				}
			}
			pack(q, out_u8 + 3 * at, w, rgb);
			continue;
		}
		blend(a8, b8, c8, d8, fx4, fy[y], v, n);
		if (!out_u8 && !nchw && identity) {  // the FP32 SSD's values as they are
			float *o = out_f32 + 3 * at;
			int r = rgb ? 2 : 0;
			for (int x = 0; x < w; x++) {
				o[3 * x] = v[4 * x + r];
				o[3 * x + 1] = v[4 * x + 1];
				o[3 * x + 2] = v[4 * x + 2 - r];
			}
			continue;
		}
		for (int x = 0; x < w; x++) {
			for (int k = 0; k < 3; k++) {
				float val = v[4 * x + (rgb ? 2 - k : k)];
				size_t o = nchw ? (size_t)k * plane + at + x : 3 * (at + x) + k;
				if (out_u8) {
					out_u8[o] = (uint8_t)(int)(val + 0.5f);
					continue;
				}
				float s = val * scale;
				s = s + shift;
				if (norm) s = (s - mean[k]) / std[k];
				out_f32[o] = s;
			}
		}
	}
}
