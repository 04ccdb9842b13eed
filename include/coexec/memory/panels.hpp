#pragma once
// The packed weight layout shared by the CPU micro-kernel and the device GEMM kernels.
//
// W[N,K] (row-major, one row per output channel) is cut into panels of `panel_width<T>`
// output channels (one 64-byte cache line of T). Panel p is stored k-major:
//   packed[(p * K + k) * NR + j] = W[p * NR + j][k],  zero where p * NR + j >= N.
// Both sides stream a panel as contiguous NR-wide vectors along k, so a split point that is a
// multiple of NR moves between them without repacking.
#include <algorithm>
#include <compare>
#include <cstddef>

#include "coexec/error.hpp"

namespace coexec {

/// Problem shape of y[M,N] = x[M,K] * W[N,K]^T, CUTLASS-style.
struct gemm_shape {
  /// @{
  std::size_t m = 0, n = 0, k = 0;  ///< rows of x and y (batch), output channels, reduction depth
  /// @}
  friend constexpr auto operator<=>(const gemm_shape&, const gemm_shape&) = default;
};

namespace memory {

template <class T>
/// Output channels per packed panel (NR): one 64-byte cache line of T. Split points are multiples of it.
inline constexpr std::size_t panel_width = 64 / sizeof(T);

/// `value` rounded up to a multiple of `multiple`.
constexpr std::size_t round_up(std::size_t value, std::size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

/// Number of T the packed layout of an N x K weight matrix occupies.
template <class T>
constexpr std::size_t packed_size(std::size_t n, std::size_t k) {
  return round_up(n, panel_width<T>) * k;
}

/// Packs panels [first_panel, first_panel + panel_count) of W[N,K], row-major with row stride
/// `ldw` >= K, into `dst`, which points at the start of panel `first_panel` (so a side holding
/// only its slice packs just that slice; a strided W is e.g. one head's keys in a fused QKV tensor).
template <class T>
void pack_panels(const T* w, std::size_t ldw, std::size_t n, std::size_t k, T* dst, std::size_t first_panel,
                 std::size_t panel_count) {
  constexpr std::size_t nr = panel_width<T>;
  require(w != nullptr && dst != nullptr, "pack_panels: null weight or destination pointer");
  require(ldw >= k, "pack_panels: row stride below K");
  require((first_panel + panel_count) * nr < n + nr, "pack_panels: panel range exceeds N");
  for (std::size_t p = 0; p < panel_count; ++p) {
    T* panel = dst + p * k * nr;
    const std::size_t row0 = (first_panel + p) * nr;
    const std::size_t rows = std::min(nr, n - row0);
    for (std::size_t kk = 0; kk < k; ++kk) {
      for (std::size_t j = 0; j < rows; ++j) panel[kk * nr + j] = w[(row0 + j) * ldw + kk];
      std::fill(panel + kk * nr + rows, panel + (kk + 1) * nr, T(0));
    }
  }
}

/// pack_panels of a contiguous W[N,K] (row stride K).
template <class T>
void pack_panels(const T* w, std::size_t n, std::size_t k, T* dst, std::size_t first_panel, std::size_t panel_count) {
  pack_panels(w, k, n, k, dst, first_panel, panel_count);
}

/// Packs all of W[N,K] into `dst` (packed_size<T>(n, k) elements).
template <class T>
void pack_panels(const T* w, std::size_t n, std::size_t k, T* dst) {
  pack_panels(w, n, k, dst, 0, round_up(n, panel_width<T>) / panel_width<T>);
}

}  // namespace memory
}  // namespace coexec
