#ifndef OSP_TFRESIZE_H
#define OSP_TFRESIZE_H
#include <stdint.h>

// osp_tf_resize computes TensorFlow's bilinear resize of a BGR image (rows
// step bytes apart, row_bytes of pixels each) into a model input, one
// output row at a time. The taps come from Go (tfResizer.prepare): col0 and
// col1 are the byte offsets of each output column's lo and hi source pixel,
// fx4 its weight on hi repeated four times (fx4f the same in float); row0, row1 and fy the same per
// output row. Each value is computed in double like TF.js and rounded once
// to float. out_u8 (when not NULL) takes the values rounded to the nearest
// integer, out_f32 otherwise (v*scale + shift - mean[k]) / std[k], the last
// step only when norm is set. rgb puts the channels in RGB order. scratch
// holds 40*w bytes.
void osp_tf_resize(const uint8_t *px, int step, int row_bytes,
                   const int32_t *col0, const int32_t *col1, const double *fx4, const float *fx4f, int w,
                   const int32_t *row0, const int32_t *row1, const double *fy, int h,
                   uint8_t *scratch, int rgb,
                   uint8_t *out_u8, float *out_f32, int in_w, int plane, int top, int left, int nchw,
                   float scale, float shift, const float *mean, const float *std, int norm);
#endif
