#pragma once
// GENERATED from kernels/conv.cl by cmake/embed_kernels.cmake; edit the .cl file instead.
#include <string>

namespace coexec::kernels {

inline const std::string& conv() {
  static const std::string source = [] {
    const char* parts[] = {
      R"coexec_cl(// 2-D convolution kernels for one block of y[n][o][oh][ow] (NCHW, OIHW weights; the semantics of
// coexec::conv2d_shape): output channels [o_begin, o_begin + o_count) x output rows
// [oh_begin, oh_begin + oh_count) of every image.
//
// Built after kernels/sync.cl and kernels/activation.cl with (coexec::gpu::conv_launcher):
//   T, COEXEC_ACT, COEXEC_HAS_BIAS   element type, epilogue
//   KH, KW, SH, SW, DH, DW, PADDED   the window: kernel, stride, dilation, whether padded
//   WG                               work-group size (dimension 0)
//   OB                               conv_igemm: output channels per work-item
//   ROWS                             conv_depthwise: output rows per work-item
// The window is compile-time, so its loops unroll and unpadded layers drop every bounds check;
// tensor sizes are arguments, so layers of one window share a program (the context caches it).
// Sizes: C, H, W input; OW output width; CG, OG channels per group in and out; PT, PL padding
// before the first row and column.
//
// Operands: `w` and `bias` point at channel o_begin, `y` at y[0][o_begin][oh_begin][0]; y is
// addressed as y[n * y_batch_stride + (o - o_begin) * y_channel_stride + (oh - oh_begin) * OW + ow]
// so the device may write into the shared output or into a compact staging buffer alike.
// Work-items outside the block only skip their stores: all of them reach coexec_signal_done.

#define COEXEC_CONV_ARGS                                                                        \
  __global const T *x, uint x_offset, __global const T *w, uint w_offset, __global const T *bias, \
      uint bias_offset, __global T *y, uint y_offset, uint y_batch_stride, uint y_channel_stride,  \
      uint C, uint H, uint W, uint OW, uint CG, uint OG, uint PT, uint PL, uint o_begin,            \
      uint o_count, uint oh_begin, uint oh_count, __global uint *sync, uint epoch

inline T coexec_conv_epilogue(T acc, __global const T* bias, uint o) {
#if COEXEC_HAS_BIAS
  acc += bias[o];
#endif
  return COEXEC_ACTIVATE(acc);
}

#if defined(OB)

// Implicit GEMM: y_g[o][p] = sum_k W_g[o][k] * cols[k][p] without materialising cols. A
// work-item owns one output pixel and OB output channels of one group: per tap it loads one
// input value (neighbouring work-items: neighbouring pixels, contiguous at stride 1) and OB
// weights shared by the whole work-group, for OB multiply-adds. Dimension 0 runs over the
// block's pixels flattened (no lanes wasted on narrow rows), 1 over images, 2 over channel blocks.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void coexec_conv_igemm(COEXEC_CONV_ARGS) {
  const uint pixels = oh_count * OW;
  const uint p = min((uint)get_global_id(0), pixels - 1);  // surplus work-items redo the last pixel
  const uint n = get_global_id(1), ob = get_global_id(2) * OB;
  const uint group = (o_begin + ob) / OG;  // OB divides OG: a block never straddles groups
  const int ih0 = (int)((oh_begin + p / OW) * SH) - (int)PT, iw0 = (int)(p % OW * SW) - (int)PL;
  __global const T* in = x + x_offset + (n * C + group * CG) * (H * W);
  const uint patch = CG * KH * KW;
  __global const T* filter[OB];
#pragma unroll
  for (uint j = 0; j < OB; ++j) filter[j] = w + w_offset + min(ob + j, o_count - 1) * patch;  // tail: reread the last
  T acc[OB];
#pragma unroll
  for (uint j = 0; j < OB; ++j) acc[j] = 0;
  for (uint c = 0; c < CG; ++c, in += H * W) {
#pragma unroll
    for (uint kh = 0; kh < KH; ++kh) {
      const int ih = ih0 + (int)(kh * DH);
#pragma unroll
      for (uint kw = 0; kw < KW; ++kw) {
        const int iw = iw0 + (int)(kw * DW);
#if PADDED
        const T v = (ih >= 0 && ih < (int)H && iw >= 0 && iw < (int)W) ? in[ih * (int)W + iw] : (T)0;
#else
        const T v = in[ih * (int)W + iw];  // without padding every tap of every output lies inside
#endif
        const uint k = (c * KH + kh) * KW + kw;
#pragma unroll
        for (uint j = 0; j < OB; ++j) acc[j] = fma(filter[j][k], v, acc[j]);
      }
    }
  }
  if (get_global_id(0) < pixels) {
    __global T* out = y + y_offset + n * y_batch_stride + p;
#pragma unroll
    for (uint j = 0; j < OB; ++j)
      if (ob + j < o_count) out[(ob + j) * y_channel_stride] = coexec_conv_epilogue(acc[j], bias + bias_offset, ob + j);
  }
  coexec_signal_done(sync, epoch);
}

#elif defined(ROWS)

// Depthwise (one input channel per output channel, unit dilation): a work-item computes ROWS
// vertically adjacent outputs of one column, so each input row it loads serves up to KH of
// them instead of being reloaded per output. The KH x KW taps live in registers. Dimension 0
// runs over (row block, column) flattened, so narrow layers fill the work-group; 1 over
// (image, channel).
#define IN_ROWS ((ROWS - 1) * SH + KH)
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void coexec_conv_depthwise(COEXEC_CONV_ARGS) {
  const uint items = (oh_count + ROWS - 1) / ROWS * OW;
  const uint item = min((uint)get_global_id(0), items - 1);  // surplus work-items redo the last
  const uint ow = item % OW, row0 = item / OW * ROWS;        // row0 relative to oh_begin
  const uint n = get_global_id(1) / o_count, ob = get_global_id(1) % o_count;
  __global const T* in = x + x_offset + (n * C + (o_begin + ob) / OG) * (H * W);
  T tap[KH * KW];
#pragma unroll
  for (uint t = 0; t < KH * KW; ++t) tap[t] = w[w_offset + ob * (KH * KW) + t];
  T acc[ROWS];
#pragma unroll
  for (uint r = 0; r < ROWS; ++r) acc[r] = 0;
  const int ih0 = (int)((oh_begin + row0) * SH) - (int)PT, iw0 = (int)(ow * SW) - (int)PL;
#pragma unroll
  for (uint i = 0; i < IN_ROWS; ++i) {
    const int ih = ih0 + (int)i;
    const bool row_inside = ih >= 0 && ih < (int)H;
#pragma unroll
    for (uint kw = 0; kw < KW; ++kw) {
      const int iw = iw0 + (int)kw;
      const T v = (row_inside && iw >= 0 && iw < (int)W) ? in[ih * (int)W + iw] : (T)0;
#pragma unroll
      for (uint r = 0; r < ROWS; ++r) {
        const int kh = (int)i - (int)(r * SH);  // the tap row input row i is for output row r
        if (kh >= 0 && kh < KH) acc[r] = fma(tap[kh * KW + kw], v, acc[r]);
      }
    }
  }
  if (get_global_id(0) < items) {
    __global T* out = y + y_offset + n * y_batch_stride + ob * y_channel_stride + ow;
#pragma unroll
    for (uint r = 0; r < ROWS; ++r)
      if (row0 + r < oh_count) out[(row0 + r) * OW] = coexec_conv_epilogue(acc[r], bias + bias_offset, ob);
  }
  coexec_signal_done(sync, epoch);
}

#endif
)coexec_cl",
    };
    std::string joined;
    for (const char* part : parts) joined += part;
    return joined;
  }();
  return source;
}

}  // namespace coexec::kernels
