// 2-D convolution kernels for one block of y[n][o][oh][ow] (NCHW, OIHW weights; the semantics of
// coexec::conv2d_shape): output channels [o_begin, o_begin + o_count) x output rows
// [oh_begin, oh_begin + oh_count) of every image.
//
// Built after kernels/sync.cl and kernels/activation.cl with (coexec::gpu::conv_launcher):
//   T, COEXEC_ACT, COEXEC_HAS_BIAS   element type, epilogue
//   KH, KW, SH, SW, DH, DW, PADDED   the window: kernel, stride, dilation, whether padded
//   WG                               work-group size (dimension 0)
//   VW                               output columns per work-item: one vector (2, 4, 8 or 16)
//   OB                               conv_igemm: output channels per work-item
//   ROWS                             conv_depthwise: output rows per work-item
//   PLANE                            conv_depthwise staged (instead of ROWS, with WG 1): the local
//                                    memory, in elements, a work-group stages its channel plane in
//   TILE                             conv_tiled: output channels and pixels per work-group
// The window is compile-time, so its loops unroll and unpadded layers drop every bounds check;
// tensor sizes are arguments, so layers of one window share a program (the context caches it).
// Sizes: C, H, W input; OW output width; CG, OG channels per group in and out; PT, PL padding
// before the first row and column.
//
// igemm and depthwise are written for CPU devices (PoCL) first, the shape of a CPU micro-kernel: a
// work-item computes VW horizontally adjacent outputs as one explicit vector, so every input
// row is read with vector loads (stride 1: one unaligned vload; stride 2: the even lanes of two)
// and every weight is broadcast. Bounds checks are hoisted out of the inner loops: rows outside
// the input are skipped with a branch that is uniform per work-item, and only work-items whose
// columns reach into the padding (or past the row's end) copy each input row segment into a
// zero-filled private array first, then run the same vector code on it.
//
// Operands: `w` and `bias` point at channel o_begin, `y` at y[0][o_begin][oh_begin][0]; y is
// addressed as y[n * y_batch_stride + (o - o_begin) * y_channel_stride + (oh - oh_begin) * OW + ow]
// so the device may write into the shared output or into a compact staging buffer alike.
// Every kernel starts by passing its gate (kernels/sync.cl). Work-items outside the block only
// skip their stores: all of them reach coexec_signal_done and every barrier.

#define COEXEC_CONV_ARGS                                                                        \
  __global const T *x, uint x_offset, __global const T *w, uint w_offset, __global const T *bias, \
      uint bias_offset, __global T *y, uint y_offset, uint y_batch_stride, uint y_channel_stride,  \
      uint C, uint H, uint W, uint OW, uint CG, uint OG, uint PT, uint PL, uint o_begin,            \
      uint o_count, uint oh_begin, uint oh_count, __global uint *gate, uint gate_value,             \
      __global uint *sync, uint epoch

#define CONV_CAT_(a, b) a##b
#define CONV_CAT(a, b) CONV_CAT_(a, b)
#define convT CONV_CAT(T, VW)
#define CONV_VLOAD CONV_CAT(vload, VW)
#define CONV_VSTORE CONV_CAT(vstore, VW)

// CONV_LOAD(p): the VW inputs p[0], p[SW], ..., p[(VW - 1) * SW]; CONV_READ: how many elements
// from p it reads (at stride 2 one more than it uses).
#if SW == 1
#define CONV_LOAD(p) CONV_VLOAD(0, (p))
#define CONV_READ VW
#elif SW == 2 && VW == 16
#define CONV_LOAD(p) ((convT)(vload16(0, (p)).even, vload16(1, (p)).even))
#define CONV_READ 32
#elif SW == 2 && VW == 8
#define CONV_LOAD(p) (vload16(0, (p)).even)
#define CONV_READ 16
#elif SW == 2 && VW == 4
#define CONV_LOAD(p) (vload8(0, (p)).even)
#define CONV_READ 8
#elif SW == 2 && VW == 2
#define CONV_LOAD(p) (vload4(0, (p)).even)
#define CONV_READ 4
#else
inline convT __attribute__((overloadable)) coexec_conv_gather(__global const T* p) {
  T lane[VW];
#pragma unroll
  for (uint i = 0; i < VW; ++i) lane[i] = p[i * SW];
  return CONV_VLOAD(0, lane);
}
inline convT __attribute__((overloadable)) coexec_conv_gather(__private const T* p) {
  T lane[VW];
#pragma unroll
  for (uint i = 0; i < VW; ++i) lane[i] = p[i * SW];
  return CONV_VLOAD(0, lane);
}
#define CONV_LOAD(p) coexec_conv_gather(p)
#define CONV_READ ((VW - 1L) * SW + 1)
#endif
// Input columns a work-item's row of taps reads, from its first; in 64 bits, since a huge stride
// or dilation makes it span more than an int holds.
#define CONV_SPAN (CONV_READ + (KW - 1L) * DW)
// The widest span an edge work-item copies to private memory. Wider ones (huge dilations or
// strides) load each lane with its own bounds check instead: a private array of CONV_SPAN
// elements crashed PoCL (4 GiB: its work-item loops assert, or the stack overflows).
#define CONV_STAGE_MAX 256

// The VW inputs at columns iw, iw + SW, ... of `row`, zero outside [0, width).
inline convT coexec_conv_checked(__global const T* row, long iw, int width) {
  T lane[VW];
#pragma unroll
  for (uint i = 0; i < VW; ++i) {
    const long c = iw + (long)i * SW;
    lane[i] = c >= 0 && c < width ? row[c] : (T)0;
  }
  return CONV_VLOAD(0, lane);
}

// Copies CONV_SPAN input columns from column `iw0` of `row` into `seg`, zeros outside [0, width).
#define CONV_STAGE(seg, row, iw0, width)                               \
  _Pragma("unroll") for (int t_ = 0; t_ < CONV_SPAN; ++t_) {          \
    const int iw_ = (iw0) + t_;                                        \
    const T v_ = (row)[clamp(iw_, 0, (width) - 1)];                    \
    (seg)[t_] = (iw_ >= 0 && iw_ < (width)) ? v_ : (T)0;              \
  }

// Stores VW outputs of one output row (bias and activation added), lane by lane at the row's end.
inline void coexec_conv_store(convT acc, __global T* out, __global const T* bias, uint o, uint lanes) {
#if COEXEC_HAS_BIAS
  acc += (convT)bias[o];
#endif
  acc = COEXEC_ACTIVATE(acc);
  if (lanes >= VW) {
    CONV_VSTORE(acc, 0, out);
  } else {
    T lane[VW];
    CONV_VSTORE(acc, 0, lane);
    for (uint i = 0; i < lanes; ++i) out[i] = lane[i];
  }
}

#if defined(OB)

// A 1x1 window at stride 1 without padding reads x[c][oh][ow] for y[o][oh][ow].
#define CONV_FLAT (KH == 1 && KW == 1 && SH == 1 && SW == 1 && !PADDED)

// Implicit GEMM: y_g[o][p] = sum_k W_g[o][k] * cols[k][p] without materialising cols. A
// work-item owns VW adjacent outputs of one output row and OB output channels of one group:
// OB vector accumulators; per tap one vector of inputs and OB broadcast weights, OB vector
// multiply-adds. Dimension 0 runs over (output row, column vector) of the block, 1 over images,
// 2 over channel blocks.
#define CONV_TAPS(TAP_INPUTS)                                                         \
  _Pragma("unroll") for (uint kw = 0; kw < KW; ++kw) {                                \
    const convT v = (TAP_INPUTS); /* the VW inputs tap kw multiplies */               \
    const uint k = (c * KH + kh) * KW + kw;                                           \
    _Pragma("unroll") for (uint j = 0; j < OB; ++j) acc[j] = fma((convT)filter[j][k], v, acc[j]); \
  }

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void coexec_conv_igemm(COEXEC_CONV_ARGS) {
  coexec_pass_gate(gate, gate_value);
#if CONV_FLAT  // the block's pixels are contiguous in x as in y: one long row
  const uint width = oh_count * OW, rows = 1;
#else
  const uint width = OW, rows = oh_count;
#endif
  const uint vectors = (width + VW - 1) / VW, items = rows * vectors;
  const uint item = min((uint)get_global_id(0), items - 1);  // surplus work-items redo the last
  // Remainders as a subtraction: LLVM turns a / b with a % b into a `freeze`, which oclgrind's
  // uninitialized-value checker cannot execute (scripts/ci_reliability.sh oclgrind).
  const uint row = item / vectors, ow0 = (item - row * vectors) * VW;
  const uint n = get_global_id(1), ob = get_global_id(2) * OB;
  const uint group = (o_begin + ob) / OG;  // OB divides OG: a block never straddles groups
  const int ih0 = (int)((oh_begin + row) * SH) - (int)PT, iw0 = (int)(ow0 * SW) - (int)PL;
  __global const T* in = x + x_offset + (n * C + group * CG) * (H * W);
  const uint patch = CG * KH * KW;
  __global const T* filter[OB];
#pragma unroll
  for (uint j = 0; j < OB; ++j) filter[j] = w + w_offset + min(ob + j, o_count - 1) * patch;  // tail: reread the last
  convT acc[OB];
#pragma unroll
  for (uint j = 0; j < OB; ++j) acc[j] = (convT)0;
  // Taps kh in [kh_lo, kh_hi) read rows inside the input (in 64 bits: H - ih0 + DH may pass 2^31).
#if PADDED
  const int kh_lo = ih0 >= 0 ? 0 : (-ih0 + (int)DH - 1) / (int)DH;
  const int kh_hi = min((long)KH, ((long)H - ih0 + DH - 1) / DH);
#else
  const int kh_lo = 0, kh_hi = KH;
#endif
#if CONV_FLAT
  const int row_length = ((int)H - ih0) * (int)W;  // the rest of the plane
#else
  const int row_length = W;
#endif
  if (iw0 >= 0 && iw0 + CONV_SPAN <= row_length) {
    for (uint c = 0; c < CG; ++c, in += H * W) {
#pragma unroll
      for (uint kh = 0; kh < KH; ++kh) {
        if ((int)kh >= kh_lo && (int)kh < kh_hi) {
          __global const T* src = in + (ih0 + (int)(kh * DH)) * (int)W + iw0;
          CONV_TAPS(CONV_LOAD(src + kw * DW))
        }
      }
    }
  } else {
#if CONV_SPAN <= CONV_STAGE_MAX
    T seg[CONV_SPAN];
#endif
    for (uint c = 0; c < CG; ++c, in += H * W) {
#pragma unroll
      for (uint kh = 0; kh < KH; ++kh) {
        if ((int)kh >= kh_lo && (int)kh < kh_hi) {
          __global const T* src = in + (ih0 + (int)(kh * DH)) * (int)W;
#if CONV_SPAN <= CONV_STAGE_MAX
          CONV_STAGE(seg, src, iw0, row_length)
          __private const T* s = seg;
          CONV_TAPS(CONV_LOAD(s + kw * DW))
#else
          CONV_TAPS(coexec_conv_checked(src, iw0 + (long)kw * DW, row_length))
#endif
        }
      }
    }
  }
  if (get_global_id(0) < items) {
    __global T* out = y + y_offset + n * y_batch_stride + row * OW + ow0;
#pragma unroll
    for (uint j = 0; j < OB; ++j)
      if (ob + j < o_count) coexec_conv_store(acc[j], out + (ob + j) * y_channel_stride, bias + bias_offset, ob + j, width - ow0);
  }
  coexec_signal_done(sync, epoch);
}

#elif defined(PLANE)

// Depthwise for CPU devices, on planes that fit local memory: a one-item work-group takes a run
// of channel planes of one image (dimension 1 over runs, 2 over images), and for each copies the
// input rows under its output rows to local memory, zero-padded, `pitch` to a row (the row's taps
// and a vector's overhang), so every tap is a plain vector load with no edge case, then computes
// the plane VW outputs at a time. The row kernel below checks each vector against the edges, and
// on narrow rows (MobileNet's 7 and 14) every vector is an edge: PoCL ran them at 2-12 GFLOP/s.
// One item needs no barrier: with one, PoCL 3.1's work-item loops asserted on CI's fuzzer
// (WorkitemLoops.cc, GetContextArray).
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))  // WG is 1
void coexec_conv_depthwise(COEXEC_CONV_ARGS) {
  coexec_pass_gate(gate, gate_value);
  __local T plane[PLANE];
  const uint n = get_global_id(2), run = (o_count + get_num_groups(1) - 1) / get_num_groups(1);
  const uint in_rows = (oh_count - 1) * SH + (KH - 1) * DH + 1;
  const uint pitch = (OW + VW - 1) / VW * VW * SW + (KW - 1) * DW + VW * SW;  // as conv_config::staged_pitch
  const int ih0 = (int)(oh_begin * SH) - (int)PT;
  const uint ob_end = min(o_count, (uint)(get_group_id(1) + 1) * run);
  for (uint ob = (uint)get_group_id(1) * run; ob < ob_end; ++ob) {
    __global const T* in = x + x_offset + (n * C + (o_begin + ob) / OG) * (H * W);
    for (uint r = 0; r < in_rows; ++r) {
      const int ih = ih0 + (int)r;
      __local T* row = plane + r * pitch;
      // Staged column c holds input column c - PL: zeros, the input row in vectors, zeros.
      const uint begin = ih < 0 || ih >= (int)H ? pitch : min(pitch, PL), end = max(begin, min(pitch, PL + W));
      for (uint c = 0; c < begin; ++c) row[c] = (T)0;
      __global const T* src = in + ih * (int)W - (int)PL;
      uint c = begin;
      for (; c + VW <= end; c += VW) CONV_VSTORE(CONV_VLOAD(0, src + c), 0, row + c);
      for (; c < end; ++c) row[c] = src[c];
      for (; c < pitch; ++c) row[c] = (T)0;
    }
    T tap[KH * KW];
#pragma unroll
    for (uint t = 0; t < KH * KW; ++t) tap[t] = w[w_offset + ob * (KH * KW) + t];
    __global T* out = y + y_offset + n * y_batch_stride + ob * y_channel_stride;
    for (uint r = 0; r < oh_count; ++r)
      for (uint ow0 = 0; ow0 < OW; ow0 += VW) {
        convT acc = (convT)0;
#pragma unroll
        for (uint kh = 0; kh < KH; ++kh) {
          __local const T* src = plane + (r * SH + kh * DH) * pitch + ow0 * SW;
#pragma unroll
          for (uint kw = 0; kw < KW; ++kw) acc = fma((convT)tap[kh * KW + kw], CONV_LOAD(src + kw * DW), acc);
        }
        coexec_conv_store(acc, out + r * OW + ow0, bias + bias_offset, ob, OW - ow0);
      }
  }
  coexec_signal_done(sync, epoch);
}

#elif defined(ROWS)

// Depthwise (one input channel per output channel, unit dilation): a work-item computes VW
// adjacent outputs in each of ROWS adjacent output rows of one channel, so each input row it
// loads serves up to KH of them instead of being reloaded per output. The KH x KW taps live in
// registers. Dimension 0 runs over (row block, column vector) flattened, 1 over (image, channel).
#define IN_ROWS ((ROWS - 1) * SH + KH)
#define CONV_DW_ROW(LOADER)                                                                 \
  _Pragma("unroll") for (uint kw = 0; kw < KW; ++kw) {                                      \
    const convT v = CONV_LOAD(LOADER + kw);                                                 \
    _Pragma("unroll") for (uint r = 0; r < ROWS; ++r) {                                     \
      const int kh = (int)i - (int)(r * SH); /* the tap row input row i is for output row r */ \
      if (kh >= 0 && kh < KH) acc[r] = fma((convT)tap[kh * KW + kw], v, acc[r]);            \
    }                                                                                       \
  }

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void coexec_conv_depthwise(COEXEC_CONV_ARGS) {
  coexec_pass_gate(gate, gate_value);
  const uint vectors = (OW + VW - 1) / VW, items = (oh_count + ROWS - 1) / ROWS * vectors;
  const uint item = min((uint)get_global_id(0), items - 1);  // surplus work-items redo the last
  // Remainders as a subtraction (see coexec_conv_igemm).
  const uint row_block = item / vectors, ow0 = (item - row_block * vectors) * VW, row0 = row_block * ROWS;  // row0 relative to oh_begin
  const uint n = get_global_id(1) / o_count, ob = get_global_id(1) - n * o_count;
  __global const T* in = x + x_offset + (n * C + (o_begin + ob) / OG) * (H * W);
  T tap[KH * KW];
#pragma unroll
  for (uint t = 0; t < KH * KW; ++t) tap[t] = w[w_offset + ob * (KH * KW) + t];
  convT acc[ROWS];
#pragma unroll
  for (uint r = 0; r < ROWS; ++r) acc[r] = (convT)0;
  const int ih0 = (int)((oh_begin + row0) * SH) - (int)PT, iw0 = (int)(ow0 * SW) - (int)PL;
  if (iw0 >= 0 && iw0 + CONV_SPAN <= (int)W) {
#pragma unroll
    for (uint i = 0; i < IN_ROWS; ++i) {
      const int ih = ih0 + (int)i;
      if (ih >= 0 && ih < (int)H) {
        __global const T* src = in + ih * (int)W + iw0;
        CONV_DW_ROW(src)
      }
    }
  } else {
    T seg[CONV_SPAN];
#pragma unroll
    for (uint i = 0; i < IN_ROWS; ++i) {
      const int ih = ih0 + (int)i;
      if (ih >= 0 && ih < (int)H) {
        __global const T* src = in + ih * (int)W;
        CONV_STAGE(seg, src, iw0, (int)W)
        __private const T* s = seg;
        CONV_DW_ROW(s)
      }
    }
  }
  if (get_global_id(0) < items) {
    __global T* out = y + y_offset + n * y_batch_stride + ob * y_channel_stride + ow0;
#pragma unroll
    for (uint r = 0; r < ROWS; ++r)
      if (row0 + r < oh_count) coexec_conv_store(acc[r], out + (row0 + r) * OW, bias + bias_offset, ob, OW - ow0);
  }
  coexec_signal_done(sync, epoch);
}

#elif defined(TILE)

// Implicit GEMM for GPUs with fast local memory, one group (groups == 1): per image,
// y[o][p] = sum_k W[o][k] * cols[k][p] over the block's pixels p (its output rows, flattened)
// and k = (c, kh, kw), cols gathered from x as it is staged. A 16 x 16 work-group computes a
// TILE x TILE tile; per TILE_K step it stages the weights' TILE x TILE_K block (rows of W are
// contiguous in k) and the gathered TILE_K x TILE block of cols in local memory, then each
// work-item accumulates MICRO x MICRO outputs in registers: channels to + i * 16 (a warp reads
// one: a broadcast) and pixels tp + j * 16 (neighbouring work-items, neighbouring pixels: the
// gathers and stores are coalesced). The next step's operands are loaded into registers while
// this step computes, so a deep reduction over few pixels (late ResNet layers, a few work-groups
// each walking thousands of k) waits on memory once, not once per step. Unlike igemm, pixels of
// several output rows share a tile. Dimension 0 runs over pixel tiles, 1 over channel tiles,
// 2 over images.
#define THREADS_SIDE 16
#define MICRO (TILE / THREADS_SIDE)
#define THREADS (THREADS_SIDE * THREADS_SIDE)
#define TILE_K 16
#define TAPS (KH * KW)
#define LOADS (TILE * TILE_K / THREADS)  // elements of each tile a work-item stages per step
#if THREADS % TILE != 0 || (TILE * TILE_K) % THREADS != 0
#error "conv_tiled: TILE must divide 256 (a work-item stages the same pixel of cols at every step) and be at least 16"
#endif
// Staged element l of this work-item: weight (W_O, W_K) and cols (X_K, pixel id % TILE).
#define W_O(l) ((id + (l) * THREADS) / TILE_K)
#define W_K(l) ((id + (l) * THREADS) % TILE_K)
#define X_K(l) (id / TILE + (l) * (THREADS / TILE))
// Loads the step at k0 into w_next and x_next, zeros outside the weights, the input and the block.
#define CONV_FETCH(k0)                                                                                        \
  _Pragma("unroll") for (uint l = 0; l < LOADS; ++l) {                                                        \
    const uint o = o0 + W_O(l), k = (k0) + W_K(l);                                                            \
    w_next[l] = o < o_count && k < patch ? w[w_offset + o * patch + k] : (T)0;                               \
    const uint kx = (k0) + X_K(l), c = kx / TAPS, tap = kx - c * TAPS, kh = tap / KW;                         \
    const int ih = ih0 + (int)(kh * DH), iw = iw0 + (int)((tap - kh * KW) * DW);                               \
    const bool inside = kx < patch && my_pixel < pixels && ih >= 0 && ih < (int)H && iw >= 0 && iw < (int)W; \
    x_next[l] = inside ? in[(c * H + ih) * W + iw] : (T)0;                                                    \
  }

__kernel __attribute__((reqd_work_group_size(THREADS_SIDE, THREADS_SIDE, 1)))
void coexec_conv_tiled(COEXEC_CONV_ARGS) {
  coexec_pass_gate(gate, gate_value);
  __local T w_tile[TILE_K][TILE + 1];  // padded: neighbouring work-items store neighbouring k
  __local T x_tile[TILE_K][TILE];
  const uint tp = get_local_id(0), to = get_local_id(1), id = to * THREADS_SIDE + tp;
  const uint p0 = get_group_id(0) * TILE, o0 = get_group_id(1) * TILE, n = get_group_id(2);
  const uint pixels = oh_count * OW, patch = C * TAPS;
  __global const T* in = x + x_offset + n * C * H * W;
  // The pixel this work-item stages at every step, and where its window starts.
  const uint my_pixel = p0 + id % TILE, my_row = my_pixel / OW;
  const int ih0 = (int)((oh_begin + my_row) * SH) - (int)PT, iw0 = (int)((my_pixel - my_row * OW) * SW) - (int)PL;
  T acc[MICRO][MICRO];
#pragma unroll
  for (uint i = 0; i < MICRO; ++i)
#pragma unroll
    for (uint j = 0; j < MICRO; ++j) acc[i][j] = (T)0;

  T w_next[LOADS], x_next[LOADS];
  CONV_FETCH(0)
  for (uint k0 = 0; k0 < patch; k0 += TILE_K) {
#pragma unroll
    for (uint l = 0; l < LOADS; ++l) {
      w_tile[W_K(l)][W_O(l)] = w_next[l];
      x_tile[X_K(l)][id % TILE] = x_next[l];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (k0 + TILE_K < patch) {  // uniform: the whole group fetches the next step or none does
      CONV_FETCH(k0 + TILE_K)
    }
#pragma unroll
    for (uint kk = 0; kk < TILE_K; ++kk) {
      T a[MICRO], b[MICRO];
#pragma unroll
      for (uint i = 0; i < MICRO; ++i) a[i] = w_tile[kk][to + i * THREADS_SIDE];
#pragma unroll
      for (uint j = 0; j < MICRO; ++j) b[j] = x_tile[kk][tp + j * THREADS_SIDE];
#pragma unroll
      for (uint i = 0; i < MICRO; ++i)
#pragma unroll
        for (uint j = 0; j < MICRO; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

#pragma unroll
  for (uint i = 0; i < MICRO; ++i) {
    const uint o = o0 + to + i * THREADS_SIDE;
    if (o < o_count) {
      __global T* out = y + y_offset + n * y_batch_stride + o * y_channel_stride;
#pragma unroll
      for (uint j = 0; j < MICRO; ++j) {
        const uint pixel = p0 + tp + j * THREADS_SIDE;
        if (pixel < pixels) {
          T v = acc[i][j];
#if COEXEC_HAS_BIAS
          v += bias[bias_offset + o];
#endif
          out[pixel] = COEXEC_ACTIVATE(v);
        }
      }
    }
  }
  coexec_signal_done(sync, epoch);
}

#endif
