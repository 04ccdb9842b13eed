#pragma once
// coexec::cpu::packed_gemm — the default CpuKernel: y[:, n_begin:n_end) = act(x·Wᵀ + bias) on a
// thread_pool, reading W straight from the packed panels the device side streams too.
//
// W's panels are already the "packed B" of a BLIS-style GEMM (NR = panel_width<T> columns,
// k-major), so only x is packed. For M > 8 every worker owns a (row range x panel range) block,
// blocked over K (kc) and M (mc): an mc x kc block of x is packed into MR-row micro-panels that
// stay in L2, and an MR x (tile_panels * NR) register tile is accumulated while the kc x NR slice
// of the panel stays in L1. Bias and activation are applied as the last K block is stored.
// For M <= 8 the product is bound by streaming W, so each worker reads its panels exactly once,
// straight from x without packing.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "coexec/activation.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/error.hpp"
#include "coexec/memory/panels.hpp"

namespace coexec::cpu {

/// Operands of one linear layer, y[M,N] = act(x[M,K] · W[N,K]ᵀ + bias).
template <class T>
struct gemm_args {
  const T* x = nullptr;  ///< input x[M,K], row-major with row stride ldx
  std::size_t ldx = 0;         ///< x[M,K] row-major, row stride ldx >= K
  const T* panels = nullptr;   ///< all of W in memory::pack_panels layout (panel 0 first)
  const T* weights = nullptr;  ///< optional raw W[N,K] row-major (needed by cblas_gemm only)
  const T* bias = nullptr;     ///< N values or null
  T* y = nullptr;  ///< output y[M,N], row-major with row stride ldy
  std::size_t ldy = 0;  ///< y[M,N] row-major, row stride ldy >= N
  gemm_shape shape;     ///< m, n, k
  activation act = activation::none;  ///< applied after the bias
};

namespace detail {

[[noreturn]] inline void invalid_argument(const char* kernel, const std::string& what) {
  throw error(errc::invalid_argument, std::string(kernel) + ": " + what);
}

/// Checks what every CpuKernel needs: the column range, x, y and their strides. An empty range
/// anywhere in [0, N] is a valid no-op (a side may get no columns). Messages are only built on
/// failure, so a valid call allocates nothing. `kernel` names the caller.
template <class T>
void check_columns(const gemm_args<T>& args, std::size_t n_begin, std::size_t n_end,
                   const char* kernel) {
  using std::to_string;
  if (n_begin > n_end || n_end > args.shape.n)
    invalid_argument(kernel, "column range [" + to_string(n_begin) + ", " + to_string(n_end) +
                                 ") is not within N = " + to_string(args.shape.n));
  if (n_begin == n_end) return;
  if (n_begin % memory::panel_width<T> != 0)
    invalid_argument(kernel, "n_begin (" + to_string(n_begin) +
                                 ") must be a multiple of panel_width (" +
                                 to_string(memory::panel_width<T>) + ")");
  if (args.shape.m == 0) return;
  if (args.x == nullptr || args.y == nullptr) invalid_argument(kernel, "x and y must not be null");
  if (args.ldx < args.shape.k || args.ldy < args.shape.n)
    invalid_argument(kernel, "ldx must be >= K and ldy >= N");
}

// The target's native vector and how many of them the register file holds.
#if defined(__AVX512F__)
inline constexpr std::size_t vector_bytes = 64, vector_registers = 32;
#elif defined(__AVX__)
inline constexpr std::size_t vector_bytes = 32, vector_registers = 16;
#elif defined(__aarch64__)
inline constexpr std::size_t vector_bytes = 16, vector_registers = 32;
#else
inline constexpr std::size_t vector_bytes = 16, vector_registers = 16;
#endif

// Loops over a tile's compile-time extents carry `#pragma GCC unroll`: its accumulators stay in
// registers only when every index into them is a constant.

template <class T>
struct simd {
  static_assert(std::is_floating_point_v<T>);
  typedef T vec __attribute__((vector_size(vector_bytes)));
  static constexpr std::size_t lanes = vector_bytes / sizeof(T);

  static vec load(const T* p) noexcept {
    vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, vec v) noexcept { std::memcpy(p, &v, sizeof v); }
  static vec broadcast(T s) noexcept { return splat(s, std::make_index_sequence<lanes>{}); }

 private:
  template <std::size_t... I>
  static vec splat(T s, std::index_sequence<I...>) noexcept {
    return vec{(void(I), s)...};
  }
};

/// Register tiling and cache blocking, all derived from the vector width.
template <class T>
struct blocking {
  static constexpr std::size_t nr = memory::panel_width<T>;
  static constexpr std::size_t panel_vectors = nr / simd<T>::lanes;  // 1 (AVX-512), 2 (AVX) or 4
  // One-vector panels would cost a broadcast of x per FMA; a tile two panels wide halves that.
  static constexpr std::size_t tile_panels = panel_vectors == 1 ? 2 : 1;
  static constexpr std::size_t tile_vectors = tile_panels * panel_vectors;
  // Three quarters of the registers accumulate; the rest hold a panel row and broadcasts of x.
  static constexpr std::size_t accumulators = vector_registers * 3 / 4;
  static constexpr std::size_t mr = accumulators / tile_vectors;
  // kc x NR of a panel (16 KiB) stays in L1 while a column of tiles streams past it.
  static constexpr std::size_t kc = 16 * 1024 / (nr * sizeof(T));
  // mc x kc of packed x (<= 160 KiB) stays in L2 while the worker's panels stream past it.
  static constexpr std::size_t mc = 160 * 1024 / (kc * sizeof(T)) / mr * mr;
  // Rows a streaming (M <= 8) pass accumulates at once.
  static constexpr std::size_t gemv_rows = std::min<std::size_t>(8, accumulators / panel_vectors);
  static constexpr std::size_t gemv_max_m = 8;
};

template <class T>
using vec = typename simd<T>::vec;

/// Where a finished register tile goes and what happens to it on the way.
template <class T>
struct tile_store {
  T* c;
  std::size_t ldc;
  std::size_t cols;  // valid columns; the rest of the tile lies past n_end and is dropped
  bool accumulate;   // add what c holds (every K block after the first)
  const T* bias;     // last K block only; may be null
  activation act;    // last K block only
};

/// Stores a full R x W-vector tile: adds c and/or bias, activates.
template <class T, std::size_t R, std::size_t W>
[[gnu::always_inline]] inline void store_full_tile(vec<T> (&acc)[R][W],
                                                   const tile_store<T>& to) noexcept {
  using S = simd<T>;
  if (to.accumulate) {
#pragma GCC unroll 64
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 64
      for (std::size_t w = 0; w < W; ++w) acc[r][w] += S::load(to.c + r * to.ldc + w * S::lanes);
  }
  if (to.bias) {
#pragma GCC unroll 64
    for (std::size_t w = 0; w < W; ++w) {
      const vec<T> b = S::load(to.bias + w * S::lanes);
#pragma GCC unroll 64
      for (std::size_t r = 0; r < R; ++r) acc[r][w] += b;
    }
  }
  const vec<T> zero{}, six = S::broadcast(T(6));
#pragma GCC unroll 64
  for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 64
    for (std::size_t w = 0; w < W; ++w) {
      vec<T> v = acc[r][w];
      // The same comparisons as coexec::apply, so NaN maps the same way.
      if (to.act == activation::relu) v = v > zero ? v : zero;
      if (to.act == activation::relu6) v = v < zero ? zero : (v > six ? six : v);
      S::store(to.c + r * to.ldc + w * S::lanes, v);
    }
  if (to.act == activation::gelu)  // on the stored tile: the compiler vectorises float gelu (coexec::apply) there
    for (std::size_t r = 0; r < R; ++r)
      for (T* c = to.c + r * to.ldc; c != to.c + r * to.ldc + W * S::lanes; ++c)
        *c = apply(activation::gelu, *c);
}

/// Stores a tile of which only `to.cols` columns exist, going through a full-width buffer so that
/// neither y nor bias is read or written past n_end.
template <class T, std::size_t R, std::size_t W>
[[gnu::always_inline]] inline void store_tile(vec<T> (&acc)[R][W],
                                              const tile_store<T>& to) noexcept {
  constexpr std::size_t width = W * simd<T>::lanes;
  if (to.cols == width) return store_full_tile(acc, to);
  alignas(64) T tile[R * width] = {};  // read only when accumulating, which the compiler cannot see
  alignas(64) T bias[width] = {};
  if (to.accumulate)
    for (std::size_t r = 0; r < R; ++r) std::copy_n(to.c + r * to.ldc, to.cols, tile + r * width);
  if (to.bias) std::copy_n(to.bias, to.cols, bias);
  store_full_tile(
      acc, tile_store<T>{tile, width, width, to.accumulate, to.bias ? bias : nullptr, to.act});
  for (std::size_t r = 0; r < R; ++r) std::copy_n(tile + r * width, to.cols, to.c + r * to.ldc);
}

/// One k step of the outer product: acc[r][w] += a[r * a_stride] * (vector w of the panel row b),
/// where the tile's panels lie `panel_stride` elements apart.
template <class T, std::size_t R, std::size_t W>
[[gnu::always_inline]] inline void rank1_update(vec<T> (&acc)[R][W], const T* a,
                                                std::size_t a_stride, const T* b,
                                                std::size_t panel_stride) noexcept {
  using S = simd<T>;
  constexpr std::size_t v = blocking<T>::panel_vectors;
  vec<T> row[W];
#pragma GCC unroll 64
  for (std::size_t w = 0; w < W; ++w) row[w] = S::load(b + w / v * panel_stride + w % v * S::lanes);
#pragma GCC unroll 64
  for (std::size_t r = 0; r < R; ++r) {
    const vec<T> ar = S::broadcast(a[r * a_stride]);
#pragma GCC unroll 64
    for (std::size_t w = 0; w < W; ++w) acc[r][w] += ar * row[w];
  }
}

/// Micro-kernel: an R-row, P-panel tile over kc steps of packed x (`a`, MR-row micro-panel) and
/// the panels at `b`.
template <class T, std::size_t R, std::size_t P>
void gemm_tile(std::size_t kc, const T* a, const T* b, std::size_t panel_stride,
               const tile_store<T>& to) noexcept {
  using B = blocking<T>;
  vec<T> acc[R][P * B::panel_vectors] = {};
  for (std::size_t k = 0; k < kc; ++k, a += B::mr, b += B::nr)
    rank1_update(acc, a, 1, b, panel_stride);
  store_tile(acc, to);
}

/// Streaming kernel: R rows of x (unpacked) times one whole panel. Independent partial sums over
/// interleaved k hide the FMA latency when R alone gives too few accumulators.
template <class T, std::size_t R>
void gemv_panel(std::size_t k, const T* x, std::size_t ldx, const T* panel,
                const tile_store<T>& to) noexcept {
  using B = blocking<T>;
  constexpr std::size_t v = B::panel_vectors;
  constexpr std::size_t sums = std::clamp<std::size_t>(B::accumulators / (R * v), 1, 4);
  vec<T> acc[sums][R][v] = {};
  std::size_t kk = 0;
  for (; kk + sums <= k; kk += sums)
#pragma GCC unroll 64
    for (std::size_t s = 0; s < sums; ++s)
      rank1_update(acc[s], x + kk + s, ldx, panel + (kk + s) * B::nr, 0);
  for (; kk < k; ++kk) rank1_update(acc[0], x + kk, ldx, panel + kk * B::nr, 0);
#pragma GCC unroll 64
  for (std::size_t s = 1; s < sums; ++s)
#pragma GCC unroll 64
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 64
      for (std::size_t w = 0; w < v; ++w) acc[0][r][w] += acc[s][r][w];
  store_tile(acc[0], to);
}

/// {make.operator()<1>(), ..., make.operator()<N>()}: a table, indexed at run time, of what a
/// compile-time size selects.
template <class Make, std::size_t... I>
constexpr auto make_table(Make make, std::index_sequence<I...>) {
  using entry = decltype(make.template operator()<1>());
  return std::array<entry, sizeof...(I)>{make.template operator()<I + 1>()...};
}

template <class T>
auto gemm_tile_for(std::size_t rows, std::size_t panels) noexcept {
  using B = blocking<T>;
  static constexpr auto kernels = make_table(
      []<std::size_t P>() {
        return make_table([]<std::size_t R>() { return &gemm_tile<T, R, P>; },
                          std::make_index_sequence<B::mr>{});
      },
      std::make_index_sequence<B::tile_panels>{});
  return kernels[panels - 1][rows - 1];
}

template <class T>
auto gemv_panel_for(std::size_t rows) noexcept {
  static constexpr auto kernels = make_table([]<std::size_t R>() { return &gemv_panel<T, R>; },
                                             std::make_index_sequence<blocking<T>::gemv_rows>{});
  return kernels[rows - 1];
}

constexpr std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

/// Copies x[m, kc] (row stride ldx) into MR-row micro-panels, k-major within each.
template <class T>
void pack_rows(const T* x, std::size_t ldx, std::size_t m, std::size_t kc, T* dst) noexcept {
  constexpr std::size_t mr = blocking<T>::mr;
  for (std::size_t r0 = 0; r0 < m; r0 += mr, dst += mr * kc)
    for (std::size_t r = 0; r < std::min(mr, m - r0); ++r) {
      const T* src = x + (r0 + r) * ldx;
      for (std::size_t k = 0; k < kc; ++k) dst[k * mr + r] = src[k];
    }
}

/// This thread's packing buffer for one mc x kc block, allocated on first use.
template <class T>
T* pack_buffer() {
  constexpr std::size_t bytes = blocking<T>::mc * blocking<T>::kc * sizeof(T);
  struct release {
    void operator()(T* p) const noexcept { ::operator delete (p, std::align_val_t{64}); }
  };
  thread_local const std::unique_ptr<T, release> buffer(
      static_cast<T*>(::operator new (bytes, std::align_val_t{64})));
  return buffer.get();
}

/// Workers along M and along N for a `row_tiles` x `col_tiles` grid of register tiles.
struct worker_grid {
  std::size_t rows = 1, cols = 1;
};

/// Picks the factorization of `workers` that minimizes the busiest worker's tile count, counting
/// `pack_cost` extra columns per row for the x block every column of workers packs again.
inline worker_grid choose_grid(std::size_t workers, std::size_t row_tiles, std::size_t col_tiles,
                               double pack_cost) {
  worker_grid best{};
  double best_cost = -1;
  for (std::size_t rows = 1; rows <= workers; ++rows) {
    if (workers % rows != 0) continue;
    const std::size_t cols = workers / rows;
    const double cost =
        double(ceil_div(row_tiles, rows)) * (double(ceil_div(col_tiles, cols)) + pack_cost);
    if (best_cost < 0 || cost < best_cost) best = {rows, cols}, best_cost = cost;
  }
  return best;
}

/// y[rows, panels] of the blocked GEMM, on one worker.
template <class T>
void gemm_block(const gemm_args<T>& args, index_range rows, index_range panels, std::size_t n_end) {
  using B = blocking<T>;
  const std::size_t k = args.shape.k, panel_stride = k * B::nr;
  const std::size_t k_blocks = std::max<std::size_t>(1, ceil_div(k, B::kc));
  const std::size_t kc_max = ceil_div(k, k_blocks);
  const std::size_t mc =
      memory::round_up(ceil_div(rows.size(), ceil_div(rows.size(), B::mc)), B::mr);
  T* const packed = pack_buffer<T>();
  for (std::size_t kb = 0; kb < k_blocks; ++kb) {
    const std::size_t k0 = kb * kc_max, kc = std::min(kc_max, k - k0);
    const bool last = kb + 1 == k_blocks;
    for (std::size_t i0 = rows.begin; i0 < rows.end; i0 += mc) {
      const std::size_t m = std::min(mc, rows.end - i0);
      pack_rows(args.x + i0 * args.ldx + k0, args.ldx, m, kc, packed);
      for (std::size_t p = panels.begin; p < panels.end; p += B::tile_panels) {
        const std::size_t tile_panels = std::min(B::tile_panels, panels.end - p);
        const std::size_t col0 = p * B::nr;
        const std::size_t cols = std::min(n_end, col0 + tile_panels * B::nr) - col0;
        const T* b = args.panels + p * panel_stride + k0 * B::nr;
        for (std::size_t r0 = 0; r0 < m; r0 += B::mr) {
          const tile_store<T> to{args.y + (i0 + r0) * args.ldy + col0,
                                 args.ldy,
                                 cols,
                                 kb != 0,
                                 last && args.bias ? args.bias + col0 : nullptr,
                                 last ? args.act : activation::none};
          gemm_tile_for<T>(std::min(B::mr, m - r0), tile_panels)(kc, packed + r0 * kc, b,
                                                                 panel_stride, to);
        }
      }
    }
  }
}

template <class T>
void gemm(thread_pool& pool, const gemm_args<T>& args, index_range panels, std::size_t n_end) {
  using B = blocking<T>;
  const std::size_t row_tiles = ceil_div(args.shape.m, B::mr);
  const std::size_t col_tiles = ceil_div(panels.size(), B::tile_panels);
  // Packing a row of x costs about what one panel of FMAs on it does.
  const worker_grid grid = choose_grid(pool.size(), row_tiles, col_tiles, 1.0 / B::tile_panels);
  pool.run([&](std::size_t worker, std::size_t) {
    const index_range rt = split_evenly(row_tiles, worker / grid.cols, grid.rows);
    const index_range ct = split_evenly(col_tiles, worker % grid.cols, grid.cols);
    // The last tiles may be partial, so clamp both ends (an empty share may lie past the end).
    const index_range rows{std::min(rt.begin * B::mr, args.shape.m),
                           std::min(rt.end * B::mr, args.shape.m)};
    const index_range cols{std::min(panels.begin + ct.begin * B::tile_panels, panels.end),
                           std::min(panels.begin + ct.end * B::tile_panels, panels.end)};
    if (rows.size() != 0 && cols.size() != 0) gemm_block(args, rows, cols, n_end);
  });
}

template <class T>
void gemv(thread_pool& pool, const gemm_args<T>& args, index_range panels, std::size_t n_end) {
  using B = blocking<T>;
  const std::size_t k = args.shape.k;
  pool.run([&](std::size_t worker, std::size_t workers) {
    const index_range mine = split_evenly(panels.size(), worker, workers);
    for (std::size_t p = panels.begin + mine.begin; p < panels.begin + mine.end; ++p) {
      const std::size_t col0 = p * B::nr, cols = std::min(n_end, col0 + B::nr) - col0;
      for (std::size_t r0 = 0; r0 < args.shape.m; r0 += B::gemv_rows) {
        const tile_store<T> to{args.y + r0 * args.ldy + col0,          args.ldy, cols, false,
                               args.bias ? args.bias + col0 : nullptr, args.act};
        gemv_panel_for<T>(std::min(B::gemv_rows, args.shape.m - r0))(
            k, args.x + r0 * args.ldx, args.ldx, args.panels + p * k * B::nr, to);
      }
    }
  });
}

}  // namespace detail

/// Default CpuKernel policy: a packed-panel GEMM with fused bias and activation.
struct packed_gemm {
  static constexpr bool needs_raw_weights = false;  ///< reads only the packed panels (gemm_args::panels)

  /// Computes y[:, n_begin:n_end) = act(x·Wᵀ + bias), touching no other column of y.
  /// n_begin must be a multiple of memory::panel_width<T>; n_end <= N need not be.
  template <class T>
  void operator()(thread_pool& pool, const gemm_args<T>& args, std::size_t n_begin,
                  std::size_t n_end) const {
    detail::check_columns(args, n_begin, n_end, "packed_gemm");
    if (n_begin == n_end || args.shape.m == 0) return;
    if (args.panels == nullptr) detail::invalid_argument("packed_gemm", "panels must not be null");
    constexpr std::size_t nr = memory::panel_width<T>;
    const index_range panels{n_begin / nr, detail::ceil_div(n_end, nr)};
    if (args.shape.m <= detail::blocking<T>::gemv_max_m)
      detail::gemv(pool, args, panels, n_end);
    else
      detail::gemm(pool, args, panels, n_end);
  }
};

}  // namespace coexec::cpu
