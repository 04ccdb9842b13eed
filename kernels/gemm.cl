// Dense-layer kernels for one column slice:
//   y[r][j] = act(sum_kk x[r][kk] * W[j][kk] + bias[j]),  r < m, j < n_count,
// with W in the panel layout of include/coexec/memory/panels.hpp (PANEL columns per panel,
// panel p stored k-major: w[(p * k + kk) * PANEL + jj] = W[p * PANEL + jj][kk], zero-padded).
// `w` points at the slice's first panel, `y` at y[0][slice start], `bias` at bias[slice start].
//
// Built after kernels/sync.cl and kernels/activation.cl with (coexec::gpu::gemm_launcher):
//   T, PANEL, COEXEC_ACT, COEXEC_HAS_BIAS    element type, panel width, epilogue
//   COEXEC_GEMM_FAMILY                       which kernel below is compiled
//   TILE_M, TILE_N, TILE_K, MICRO_M, MICRO_N, VW, K_SPLIT   tile sizes (gemm_config)
// Every kernel takes the same arguments, so one launcher serves them all, and starts by passing
// its gate (kernels/sync.cl). Work-items outside the problem only skip their stores: all of them
// reach coexec_signal_done and every barrier.

#define COEXEC_GEMM_LOCAL 0
#define COEXEC_GEMM_REGISTER 1
#define COEXEC_GEMM_GEMV 2

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define vecT CAT(T, VW)
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)

#define COEXEC_GEMM_ARGS                                                                        \
  __global const T *x, uint x_offset, uint ldx, __global const T *w, uint w_offset,              \
      __global const T *bias, uint bias_offset, __global T *y, uint y_offset, uint ldy, uint m, \
      uint n_count, uint k, __global uint *gate, uint gate_value, __global uint *sync, uint epoch

// Adds the bias, applies the activation and stores VW outputs of one row from column `col`:
// one vector store where all VW columns lie inside the slice, element by element at its end.
inline void coexec_store(vecT acc, __global T* y_row, __global const T* bias, uint col, uint n_count) {
  if (col + VW <= n_count) {
#if COEXEC_HAS_BIAS
    acc += VLOAD(0, bias + col);
#endif
    VSTORE(COEXEC_ACTIVATE(acc), 0, y_row + col);
  } else if (col < n_count) {
    T lane[VW];
    VSTORE(acc, 0, lane);
    for (uint j = 0; col + j < n_count; ++j) {
      T v = lane[j];
#if COEXEC_HAS_BIAS
      v += bias[col + j];
#endif
      y_row[col + j] = COEXEC_ACTIVATE(v);
    }
  }
}

#if COEXEC_GEMM_FAMILY == COEXEC_GEMM_REGISTER

// For devices whose local memory is ordinary memory (PoCL CPU devices, Mali). A work-item owns a
// VW-wide strip of one panel (VW = MICRO_N) and MICRO_M rows of accumulators: per k it loads one
// vector of W and broadcasts MICRO_M values of x, the shape of a CPU GEMM micro-kernel. A
// work-group holds TILE_N / VW neighbouring strips (whole panels, streamed contiguously) and
// walks TILE_M rows MICRO_M at a time, so its panels are re-read from cache, not memory.
__kernel __attribute__((reqd_work_group_size(TILE_N / VW, 1, 1)))
void coexec_gemm_register(COEXEC_GEMM_ARGS) {
  coexec_pass_gate(gate, gate_value);
  const uint strips = (n_count + VW - 1) / VW;
  const uint col = min((uint)get_global_id(0), strips - 1) * VW;  // surplus work-items redo the last strip
  __global const T* strip = w + w_offset + (col / PANEL) * k * PANEL + col % PANEL;
  const uint row_end = min(m, ((uint)get_group_id(1) + 1) * TILE_M);
  for (uint row0 = get_group_id(1) * TILE_M; row0 < row_end; row0 += MICRO_M) {
    __global const T* x_row[MICRO_M];
    vecT acc[MICRO_M];
#pragma unroll
    for (uint r = 0; r < MICRO_M; ++r) {
      x_row[r] = x + x_offset + min(row0 + r, m - 1) * ldx;  // rows past m repeat the last one
      acc[r] = (vecT)0;
    }
    for (uint kk = 0; kk < k; ++kk) {
      const vecT b = VLOAD(0, strip + kk * PANEL);
#pragma unroll
      for (uint r = 0; r < MICRO_M; ++r) acc[r] = fma((vecT)x_row[r][kk], b, acc[r]);
    }
    if (get_global_id(0) < strips) {
#pragma unroll
      for (uint r = 0; r < MICRO_M; ++r)
        if (row0 + r < m) coexec_store(acc[r], y + y_offset + (row0 + r) * ldy, bias + bias_offset, col, n_count);
    }
  }
  coexec_signal_done(sync, epoch);
}

#elif COEXEC_GEMM_FAMILY == COEXEC_GEMM_GEMV

// Small M, memory bound: a work-group streams one panel (TILE_N == PANEL) exactly once for its
// TILE_M rows. Work-item (lane, s) accumulates columns lane * VW .. + VW over k = s, s + K_SPLIT,
// ..., so neighbouring work-items read neighbouring vectors of the contiguous panel; K_SPLIT > 1
// (GPUs) sums the partial results in local memory, K_SPLIT == 1 (CPU devices) needs no reduction.
#define LANES (PANEL / VW)
__kernel __attribute__((reqd_work_group_size(LANES * K_SPLIT, 1, 1)))
void coexec_gemv(COEXEC_GEMM_ARGS) {
  coexec_pass_gate(gate, gate_value);
  const uint lane = get_local_id(0) % LANES, s = get_local_id(0) / LANES;
  const uint col = get_group_id(0) * PANEL + lane * VW;
  const uint row0 = get_group_id(1) * TILE_M;
  const uint rows = min((uint)TILE_M, m - row0);
  __global const T* strip = w + w_offset + get_group_id(0) * k * PANEL + lane * VW;
  __global const T* x_rows = x + x_offset + row0 * ldx;
  vecT acc[TILE_M];
#pragma unroll
  for (uint r = 0; r < TILE_M; ++r) acc[r] = (vecT)0;
#pragma unroll 4
  for (uint kk = s; kk < k; kk += K_SPLIT) {
    const vecT b = VLOAD(0, strip + kk * PANEL);
#pragma unroll
    for (uint r = 0; r < TILE_M; ++r)
      if (r < rows) acc[r] = fma((vecT)x_rows[r * ldx + kk], b, acc[r]);
  }
#if K_SPLIT > 1
  __local vecT partial[TILE_M][LANES * K_SPLIT];
  const uint id = get_local_id(0);
#pragma unroll
  for (uint r = 0; r < TILE_M; ++r) partial[r][id] = acc[r];
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint stride = K_SPLIT / 2; stride > 0; stride /= 2) {
    if (s < stride) {
#pragma unroll
      for (uint r = 0; r < TILE_M; ++r)
        if (r < rows) partial[r][id] += partial[r][id + stride * LANES];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#pragma unroll
  for (uint r = 0; r < TILE_M; ++r) acc[r] = partial[r][lane];
#endif
  if (s == 0) {
#pragma unroll
    for (uint r = 0; r < TILE_M; ++r)
      if (r < rows) coexec_store(acc[r], y + y_offset + (row0 + r) * ldy, bias + bias_offset, col, n_count);
  }
  coexec_signal_done(sync, epoch);
}

#elif COEXEC_GEMM_FAMILY == COEXEC_GEMM_LOCAL

// For GPUs with fast local memory. A work-group computes a TILE_M x TILE_N tile of y with
// (TILE_N / MICRO_N) x (TILE_M / MICRO_M) work-items (dimension 0 along N). Per TILE_K step it
// stages x (transposed, padded against bank conflicts) and the panels' TILE_K x TILE_N block in
// local memory; each work-item then accumulates MICRO_M x MICRO_N outputs in registers: rows
// tm + i * THREADS_M (a warp reads one or two rows: broadcasts) and VW-wide column vectors
// tn + v * THREADS_N (neighbouring work-items read neighbouring vectors: no bank conflicts).
// The next step's x and W are loaded into registers while this step computes: a layer of few
// work-groups per compute unit (BERT's 128 x 3072 x 768 fills 96 on an H100's 132) has no other
// work-group to hide the loads behind.
#define THREADS_M (TILE_M / MICRO_M)
#define THREADS_N (TILE_N / MICRO_N)
#define THREADS (THREADS_M * THREADS_N)
#define VECS_N (MICRO_N / VW)
#define X_COUNT (TILE_M * TILE_K)                        // x elements staged per step
#define W_COUNT (TILE_K * TILE_N / VW)                   // W vectors staged per step
#define X_LOADS ((X_COUNT + THREADS - 1) / THREADS)      // of them, per work-item
#define W_LOADS ((W_COUNT + THREADS - 1) / THREADS)
// A work-item's l-th staged x element: row X_R(l), k X_K(l) of the tile (neighbouring
// work-items, neighbouring k: coalesced). Its l-th W vector: k W_K(l), vector W_V(l) of the
// tile's TILE_N / VW, in panel W_V(l) / (PANEL / VW) (each panel's TILE_K x PANEL block is
// contiguous: neighbouring work-items read neighbouring vectors).
#define X_T(l) (id + (l) * THREADS)
#define X_R(l) (X_T(l) / TILE_K)
#define X_K(l) (X_T(l) % TILE_K)
#define W_IN_PANEL(l) (X_T(l) % (TILE_K * PANEL / VW))
#define W_K(l) (W_IN_PANEL(l) / (PANEL / VW))
#define W_V(l) (X_T(l) / (TILE_K * PANEL / VW) * (PANEL / VW) + W_IN_PANEL(l) % (PANEL / VW))
// Loads step k0's operands into x_next and w_next, zeros outside the problem.
#define GEMM_FETCH(k0)                                                                                  \
  _Pragma("unroll") for (uint l = 0; l < X_LOADS; ++l) {                                                \
    const bool inside = X_T(l) < X_COUNT && row0 + X_R(l) < m && (k0) + X_K(l) < k;                     \
    x_next[l] = inside ? x[x_offset + (row0 + X_R(l)) * ldx + (k0) + X_K(l)] : (T)0;                    \
  }                                                                                                     \
  _Pragma("unroll") for (uint l = 0; l < W_LOADS; ++l) {                                                \
    const uint col = col0 + W_V(l) * VW, panel = col / PANEL;                                           \
    const bool inside = X_T(l) < W_COUNT && panel < panels && (k0) + W_K(l) < k;                        \
    w_next[l] = inside ? VLOAD(0, w + w_offset + (panel * k + (k0) + W_K(l)) * PANEL + col % PANEL) : (vecT)0; \
  }
__kernel __attribute__((reqd_work_group_size(THREADS_N, THREADS_M, 1)))
void coexec_gemm_local(COEXEC_GEMM_ARGS) {
  coexec_pass_gate(gate, gate_value);
  __local T x_tile[TILE_K][TILE_M + 1];
  __local vecT w_tile[TILE_K][TILE_N / VW];
  const uint tn = get_local_id(0), tm = get_local_id(1), id = tm * THREADS_N + tn;
  const uint row0 = get_group_id(1) * TILE_M, col0 = get_group_id(0) * TILE_N;
  const uint panels = (n_count + PANEL - 1) / PANEL;
  vecT acc[MICRO_M][VECS_N];
#pragma unroll
  for (uint i = 0; i < MICRO_M; ++i)
#pragma unroll
    for (uint v = 0; v < VECS_N; ++v) acc[i][v] = (vecT)0;

  T x_next[X_LOADS];
  vecT w_next[W_LOADS];
  GEMM_FETCH(0)
  for (uint k0 = 0; k0 < k; k0 += TILE_K) {
#pragma unroll
    for (uint l = 0; l < X_LOADS; ++l)
      if (X_T(l) < X_COUNT) x_tile[X_K(l)][X_R(l)] = x_next[l];
#pragma unroll
    for (uint l = 0; l < W_LOADS; ++l)
      if (X_T(l) < W_COUNT) w_tile[W_K(l)][W_V(l)] = w_next[l];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (k0 + TILE_K < k) {
      GEMM_FETCH(k0 + TILE_K)
    }
#pragma unroll
    for (uint kk = 0; kk < TILE_K; ++kk) {
      vecT b[VECS_N];
#pragma unroll
      for (uint v = 0; v < VECS_N; ++v) b[v] = w_tile[kk][tn + v * THREADS_N];
#pragma unroll
      for (uint i = 0; i < MICRO_M; ++i) {
        const vecT a = (vecT)x_tile[kk][tm + i * THREADS_M];
#pragma unroll
        for (uint v = 0; v < VECS_N; ++v) acc[i][v] = fma(a, b[v], acc[i][v]);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

#pragma unroll
  for (uint i = 0; i < MICRO_M; ++i) {
    const uint row = row0 + tm + i * THREADS_M;
    if (row < m) {
#pragma unroll
      for (uint v = 0; v < VECS_N; ++v)
        coexec_store(acc[i][v], y + y_offset + row * ldy, bias + bias_offset, col0 + (tn + v * THREADS_N) * VW, n_count);
    }
  }
  coexec_signal_done(sync, epoch);
}

#endif
