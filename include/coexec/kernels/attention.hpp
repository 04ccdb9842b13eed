#pragma once
// GENERATED from kernels/attention.cl by cmake/embed_kernels.cmake; edit the .cl file instead.
#include <string>

namespace coexec::kernels {

inline const std::string& attention() {
  static const std::string source = [] {
    const char* parts[] = {
      R"coexec_cl(// Multi-head scaled dot-product self-attention for a block of heads:
//   y[r][g * HEAD_DIM + i] = sum_t softmax_t(q_r . k_t / sqrt(HEAD_DIM)) v_t[i]
// for head h = head_begin + g, where row r of `qkv` holds Q | K | V (each WIDTH wide, head h at
// h * HEAD_DIM within each) and `y` points at the block's first output column (row stride ldy).
//
// Built after kernels/sync.cl and kernels/activation.cl with (coexec::gpu::attention_launcher):
//   T, HEAD_DIM, WIDTH   element type, features per head, Q's width (heads * HEAD_DIM)
//   ROWS                 query rows per work-group
//   KEYS                 keys per tile staged in local memory
//   COEXEC_ATTENTION_TILED  which kernel below is compiled:
//     0 (rows)   a work-item per query row, for devices whose local memory is ordinary memory
//                (CPU devices, Mali); VW: vector width along a head's features (1, 2, 4, 8 or
//                16; divides HEAD_DIM), KEYS the vector width of the scores (2, 4, 8 or 16)
//     1 (tiled)  THREADS work-items share a block of ROWS rows, for GPUs with fast local memory
// Both fold each tile of keys into their rows with an online softmax: the running maximum
// rescales what was summed so far. Work-items past the last row compute on a clamped row and
// skip their stores, so all reach every barrier and coexec_signal_done.

#if !COEXEC_ATTENTION_TILED

// A work-group stages KEYS keys and values of its head in local memory at a time, keys
// key-minor, so each work-item's scores for the tile are HEAD_DIM vector multiply-adds over keys
// (no horizontal sums; they vectorise on CPU devices too).

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define keysT CAT(T, KEYS)
#define VLOAD_KEYS CAT(vload, KEYS)
#define VSTORE_KEYS CAT(vstore, KEYS)
#if VW == 1  // heads of odd width: scalars
#define vecT T
#define VLOAD(c, p) ((p)[c])
#define VSTORE(v, c, p) ((p)[c] = (v))
#else
#define vecT CAT(T, VW)
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)
#endif
#define FEATURE_VECTORS (HEAD_DIM / VW)

__kernel __attribute__((reqd_work_group_size(ROWS, 1, 1)))
void coexec_attention(__global const T* qkv, uint qkv_offset, __global T* y, uint y_offset, uint ldy, uint tokens,
                      uint head_begin, __global uint* gate, uint gate_value, __global uint* sync, uint epoch) {
  coexec_pass_gate(gate, gate_value);
  __local T keys[HEAD_DIM * KEYS];    // keys[i * KEYS + t]: feature i of the tile's key t
  __local T values[KEYS * HEAD_DIM];  // values[t * HEAD_DIM + i]
  const uint stride = 3 * WIDTH, head = head_begin + get_group_id(1);
  const uint row = min((uint)get_global_id(0), tokens - 1);
  __global const T* k = qkv + qkv_offset + WIDTH + head * HEAD_DIM;
  __global const T* v = k + WIDTH;

  T q[HEAD_DIM];
  const T scale = (T)1 / sqrt((T)HEAD_DIM);
  for (uint i = 0; i < HEAD_DIM; ++i) q[i] = qkv[qkv_offset + row * stride + head * HEAD_DIM + i] * scale;
  vecT acc[FEATURE_VECTORS];
  for (uint c = 0; c < FEATURE_VECTORS; ++c) acc[c] = (vecT)0;
  T top = (T)-1e30, sum = 0;  // finite: exp(top - first maximum) is 0, not NaN

  for (uint t0 = 0; t0 < tokens; t0 += KEYS) {
    const uint count = min((uint)KEYS, tokens - t0);
    barrier(CLK_LOCAL_MEM_FENCE);  // every work-item is done with the previous tile
    for (uint e = get_local_id(0); e < KEYS * HEAD_DIM; e += ROWS) {
      const uint t = e / HEAD_DIM, i = e - t * HEAD_DIM;
      const bool inside = t < count;  // zeros past the last key: their weights are dropped below
      keys[i * KEYS + t] = inside ? k[(t0 + t) * stride + i] : 0;
      values[e] = inside ? v[(t0 + t) * stride + i] : 0;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    keysT score = 0;
    for (uint i = 0; i < HEAD_DIM; ++i) score += q[i] * VLOAD_KEYS(i, keys);
    T lane[KEYS];
    VSTORE_KEYS(score, 0, lane);
    T tile_top = top;
    for (uint t = 0; t < count; ++t) tile_top = max(tile_top, lane[t]);
    VSTORE_KEYS(exp(score - tile_top), 0, lane);
    const T rescale = exp(top - tile_top);
    sum *= rescale;
    for (uint c = 0; c < FEATURE_VECTORS; ++c) acc[c] *= rescale;
    for (uint t = 0; t < count; ++t) {
      sum += lane[t];
      for (uint c = 0; c < FEATURE_VECTORS; ++c) acc[c] += lane[t] * VLOAD(c, values + t * HEAD_DIM);
    }
    top = tile_top;
  }

  if (get_global_id(0) < tokens) {
    __global T* out = y + y_offset + row * ldy + get_group_id(1) * HEAD_DIM;
    for (uint c = 0; c < FEATURE_VECTORS; ++c) VSTORE(acc[c] / sum, c, out);
  }
  coexec_signal_done(sync, epoch);
}

#else

// The block's rows and each tile of keys and values sit in local memory; the work-items share
// out the tile's ROWS x KEYS scores (each a dot product over HEAD_DIM), then the ROWS x HEAD_DIM
// outputs (each a sum over the tile's keys), so a short sequence still gives every work-item
// little serial work: 12 heads of 128 tokens make 96 groups of THREADS.
#define OUTPUTS_PER_ITEM ((ROWS * HEAD_DIM + THREADS - 1) / THREADS)

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1)))
void coexec_attention(__global const T* qkv, uint qkv_offset, __global T* y, uint y_offset, uint ldy, uint tokens,
                      uint head_begin, __global uint* gate, uint gate_value, __global uint* sync, uint epoch) {
  coexec_pass_gate(gate, gate_value);
  __local T q[ROWS * HEAD_DIM];             // the block's queries, scaled
  __local T keys[KEYS * (HEAD_DIM + 1)];    // padded: neighbouring work-items read neighbouring keys
  __local T values[KEYS * HEAD_DIM];
  __local T weight[ROWS * KEYS];            // the tile's scores, then their exponentials
  __local T top[ROWS], sum[ROWS], rescale[ROWS];
  const uint lid = get_local_id(0), stride = 3 * WIDTH, head = head_begin + get_group_id(1);
  const uint row0 = get_group_id(0) * ROWS;
  __global const T* base = qkv + qkv_offset + head * HEAD_DIM;

  const T scale = (T)1 / sqrt((T)HEAD_DIM);
  for (uint e = lid; e < ROWS * HEAD_DIM; e += THREADS) {
    const uint r = e / HEAD_DIM, i = e - r * HEAD_DIM;
    q[e] = base[min(row0 + r, tokens - 1) * stride + i] * scale;
  }
  if (lid < ROWS) top[lid] = (T)-1e30, sum[lid] = 0;  // finite: exp(top - first maximum) is 0, not NaN
  T acc[OUTPUTS_PER_ITEM];
  for (uint j = 0; j < OUTPUTS_PER_ITEM; ++j) acc[j] = 0;

  for (uint t0 = 0; t0 < tokens; t0 += KEYS) {
    const uint count = min((uint)KEYS, tokens - t0);
    barrier(CLK_LOCAL_MEM_FENCE);  // the previous tile is used up (and q, top, sum written)
    for (uint e = lid; e < KEYS * HEAD_DIM; e += THREADS) {
      const uint t = e / HEAD_DIM, i = e - t * HEAD_DIM;
      const bool inside = t < count;  // zeros past the last key: their weights are set to 0 below
      keys[t * (HEAD_DIM + 1) + i] = inside ? base[(t0 + t) * stride + WIDTH + i] : 0;
      values[e] = inside ? base[(t0 + t) * stride + 2 * WIDTH + i] : 0;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint e = lid; e < ROWS * KEYS; e += THREADS) {
      const uint r = e / KEYS, t = e - r * KEYS;
      T dot = 0;
      for (uint i = 0; i < HEAD_DIM; ++i) dot += q[r * HEAD_DIM + i] * keys[t * (HEAD_DIM + 1) + i];
      weight[e] = dot;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < ROWS) {
      T tile_top = top[lid], added = 0;
      for (uint t = 0; t < count; ++t) tile_top = max(tile_top, weight[lid * KEYS + t]);
      for (uint t = 0; t < KEYS; ++t) {
        const T w = t < count ? exp(weight[lid * KEYS + t] - tile_top) : 0;
        weight[lid * KEYS + t] = w;
        added += w;
      }
      rescale[lid] = exp(top[lid] - tile_top);
      sum[lid] = sum[lid] * rescale[lid] + added;
      top[lid] = tile_top;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint j = 0; j < OUTPUTS_PER_ITEM; ++j) {
      const uint e = min(lid + j * THREADS, (uint)(ROWS * HEAD_DIM - 1)), r = e / HEAD_DIM, i = e - r * HEAD_DIM;
      T part = 0;
      for (uint t = 0; t < KEYS; ++t) part += weight[r * KEYS + t] * values[t * HEAD_DIM + i];
      acc[j] = acc[j] * rescale[r] + part;
    }
  }

  for (uint j = 0; j < OUTPUTS_PER_ITEM; ++j) {
    const uint e = lid + j * THREADS, r = e / HEAD_DIM, i = e - r * HEAD_DIM;
    if (e < ROWS * HEAD_DIM && row0 + r < tokens) y[y_offset + (row0 + r) * ldy + get_group_id(1) * HEAD_DIM + i] = acc[j] / sum[r];
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
