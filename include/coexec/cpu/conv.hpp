#pragma once
// coexec::cpu::packed_conv — the default conv2d CpuKernel: a block of output channels x output
// rows of y = act(conv2d(x, W) + bias), NCHW / OIHW, on a thread_pool.
//
// Convolution as GEMM, per image and group: Y_g[Og, P] = W_g[Og, Cg*KH*KW] · cols[Cg*KH*KW, P]
// with P the output pixels. The OIHW weights already are W_g row-major, so they play the GEMM's
// row operand (cpu/gemm.hpp packs it into MR-row micro-panels itself), and the im2col columns
// play its packed panels: each worker gathers a tile of output pixels straight into the panel
// layout (NR pixels per panel, k-major) in a fixed per-thread workspace and runs the packed
// micro-kernel over it, writing NCHW rows of y directly. 1x1 stride-1 layers take the same path
// with the gather reduced to a copy.
// Convolutions where every output channel reads one input channel (depthwise, Cg == 1) are
// bandwidth bound and have no reduction to block: they run directly, in vectors over blocks of
// rows laid out so that every tap is one contiguous run (depthwise_layout).
#include <algorithm>
#include <cmath>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "coexec/activation.hpp"
#include "coexec/cpu/gemm.hpp"
#include "coexec/cpu/thread_pool.hpp"

namespace coexec {

/// A 2-D convolution, torch.nn.functional.conv2d semantics: x[batch][channels][height][width],
/// W[out_channels][channels / groups][kernel_h][kernel_w], y[batch][out_channels][OH][OW] with
///   OH = floor((height + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h) + 1
///   OW = floor((width + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w) + 1
///   y[n][o][i][j] = bias[o] + sum over c < channels / groups, kh, kw of
///       W[o][c][kh][kw] * x[n][g * channels / groups + c][i * stride_h - pad_top + kh * dilation_h]
///                                                       [j * stride_w - pad_left + kw * dilation_w]
/// where g = o / (out_channels / groups) and x is zero outside the image.
struct conv2d_shape {
  /// @{
  std::size_t batch = 1, channels = 0, height = 0, width = 0;  ///< input x[batch][channels][height][width]
  /// @}
  /// @{
  std::size_t out_channels = 0, kernel_h = 1, kernel_w = 1;  ///< output channels and kernel size
  /// @}
  /// @{
  std::size_t stride_h = 1, stride_w = 1;  ///< vertical and horizontal stride
  /// @}
  /// @{
  std::size_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;  ///< zero padding on each side of the image
  /// @}
  /// @{
  std::size_t dilation_h = 1, dilation_w = 1;  ///< spacing between kernel taps
  /// @}
  std::size_t groups = 1;  ///< channel groups; channels and out_channels are multiples of it

  friend constexpr auto operator<=>(const conv2d_shape&, const conv2d_shape&) = default;

  /// OH, the output height. Like the other sizes, valid only once the shape passed validation
  /// (ops::conv2d checks it).
  constexpr std::size_t out_height() const { return (height + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1; }
  /// OW, the output width.
  constexpr std::size_t out_width() const { return (width + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1; }
  constexpr std::size_t group_channels() const { return channels / groups; }  ///< input channels per group (Cg)
  constexpr std::size_t group_out_channels() const { return out_channels / groups; }  ///< output channels per group (Og)
  /// The GEMM depth: weights per output channel.
  constexpr std::size_t patch() const { return group_channels() * kernel_h * kernel_w; }
  constexpr std::size_t input_size() const { return batch * channels * height * width; }  ///< elements of x
  constexpr std::size_t output_size() const { return batch * out_channels * out_height() * out_width(); }  ///< elements of y
  constexpr std::size_t weight_size() const { return out_channels * patch(); }  ///< elements of W
  constexpr bool padded() const { return pad_top + pad_bottom + pad_left + pad_right != 0; }  ///< any side has padding
  /// 1x1, stride 1, no padding: y[n] = W · x[n] over pixels.
  constexpr bool pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && !padded();
  }
  /// Multiply-adds of the whole layer.
  constexpr double macs() const { return double(output_size()) * double(patch()); }
};

namespace cpu {

/// Operands of one convolution (all of conv2d_shape's tensors, dense).
template <class T>
struct conv_args {
  conv2d_shape shape;  ///< the convolution
  const T* x = nullptr;  ///< input, NCHW
  const T* weights = nullptr;  ///< weights, OIHW
  const T* bias = nullptr;     ///< out_channels values or null
  T* y = nullptr;  ///< output, NCHW
  activation act = activation::none;  ///< applied after the bias
};

namespace detail {

/// Bytes of im2col panels one work item gathers, or of a depthwise block's phases and results:
/// small enough to stay in L2 next to the weights, yet at least one panel of the deepest patch.
inline constexpr std::size_t conv_workspace_budget = 256 * 1024;
/// Most bytes of im2col panels a work item of a deep layer gathers (plan_im2col). The GEMM reads
/// them a k-block (kc rows of each panel) at a time, so they need not fit a cache: a tile of the
/// whole 7x7 plane of ResNet-50's deepest 3x3 layer (patch 4608) takes 1.2 MiB.
inline constexpr std::size_t im2col_workspace_limit = 4 * 1024 * 1024;

/// This thread's workspace (im2col panels, depthwise phases) of at least `bytes`: allocated on
/// first use and regrown only for a larger need than any before, so steady-state runs allocate
/// nothing.
template <class T>
T* conv_workspace(std::size_t bytes) {
  struct release {
    void operator()(T* p) const noexcept { ::operator delete(p, std::align_val_t{64}); }
  };
  thread_local std::unique_ptr<T, release> buffer;
  thread_local std::size_t capacity = 0;
  if (capacity < bytes) {
    buffer.reset(static_cast<T*>(::operator new(bytes, std::align_val_t{64})));
    capacity = bytes;
  }
  return buffer.get();
}

/// y[i] = act(from[i] + bias) for `count` outputs (`from` may be y); the switch stays outside
/// the loop so it vectorises.
template <class T>
void bias_activate(const T* from, T* y, std::size_t count, T bias, activation act) {
  switch (act) {
    case activation::none: for (std::size_t i = 0; i < count; ++i) y[i] = from[i] + bias; break;
    case activation::relu: for (std::size_t i = 0; i < count; ++i) y[i] = apply(activation::relu, from[i] + bias); break;
    case activation::relu6: for (std::size_t i = 0; i < count; ++i) y[i] = apply(activation::relu6, from[i] + bias); break;
    case activation::gelu: for (std::size_t i = 0; i < count; ++i) y[i] = apply(activation::gelu, from[i] + bias); break;
  }
}

/// Gathers the im2col columns of output pixels [p0, p0 + count) of one image and group into the
/// panel layout: dst[(q * patch + k) * NR + j] = cols[k][p0 + q * NR + j], zero past `count`.
template <class T>
void pack_columns(const conv2d_shape& s, const T* x_group, std::size_t p0, std::size_t count, T* dst) {
  constexpr std::size_t nr = memory::panel_width<T>;
  const std::size_t ow_count = s.out_width(), plane = s.height * s.width, patch = s.patch();
  for (std::size_t q = 0; q * nr < count; ++q, dst += patch * nr) {
    const std::size_t first = p0 + q * nr, lanes = std::min(nr, count - q * nr);
    if (s.pointwise() && lanes == nr) {  // the columns are rows of x
      for (std::size_t c = 0; c < s.group_channels(); ++c) std::memcpy(dst + c * nr, x_group + c * plane + first, nr * sizeof(T));
      continue;
    }
    // Top-left input coordinate of each lane's receptive field (signed: padding lies before 0).
    std::ptrdiff_t ih0[nr], iw0[nr];
    for (std::size_t j = 0; j < nr; ++j) {
      const std::size_t p = first + std::min(j, lanes - 1);
      ih0[j] = std::ptrdiff_t(p / ow_count * s.stride_h) - std::ptrdiff_t(s.pad_top);
      iw0[j] = std::ptrdiff_t(p % ow_count * s.stride_w) - std::ptrdiff_t(s.pad_left);
    }
    // A full panel inside one output row at stride 1 reads NR consecutive inputs per tap.
    const bool one_row = lanes == nr && ih0[0] == ih0[nr - 1] && s.stride_w == 1;
    T* out = dst;
    for (std::size_t c = 0; c < s.group_channels(); ++c) {
      const T* channel = x_group + c * plane;
      for (std::size_t kh = 0; kh < s.kernel_h; ++kh)
        for (std::size_t kw = 0; kw < s.kernel_w; ++kw, out += nr) {
          const std::ptrdiff_t dh = std::ptrdiff_t(kh * s.dilation_h), dw = std::ptrdiff_t(kw * s.dilation_w);
          if (one_row && ih0[0] + dh >= 0 && ih0[0] + dh < std::ptrdiff_t(s.height) && iw0[0] + dw >= 0 &&
              iw0[nr - 1] + dw < std::ptrdiff_t(s.width)) {
            std::memcpy(out, channel + (ih0[0] + dh) * std::ptrdiff_t(s.width) + iw0[0] + dw, nr * sizeof(T));
            continue;
          }
          for (std::size_t j = 0; j < nr; ++j) {
            const std::ptrdiff_t ih = ih0[j] + dh, iw = iw0[j] + dw;
            const bool inside = j < lanes && ih >= 0 && ih < std::ptrdiff_t(s.height) && iw >= 0 && iw < std::ptrdiff_t(s.width);
            out[j] = inside ? channel[ih * std::ptrdiff_t(s.width) + iw] : T(0);
          }
        }
    }
  }
}

/// How im2col_gemm cuts a block of a layer into work items: per image and group, `tiles` tiles
/// of `tile` output pixels times `blocks` blocks of `block` output channels.
struct im2col_items {
  /// @{
  std::size_t tile = 0, tiles = 0, block = 0, blocks = 0;
  /// @}
};

/// About two items per worker, cut one of two ways. Pixel tiles small enough for their columns
/// to stay in L2 (conv_workspace_budget), channels cut into blocks only where the tiles are too
/// few. Or the cut that packs the least: an item packs its tile's im2col columns and the GEMM
/// packs its block's weight rows, so t tiles and b blocks of a group pack patch-long rows
/// t * Og + b * P times (Og channels and P pixels in the block), least at t = sqrt(t b P / Og).
/// The second is taken where it packs a quarter less or better: deep layers (7x7 or 14x14 pixels,
/// hundreds of channels), whose L2-sized tiles of 16 pixels each packed all the weights again.
/// On 8 threads ResNet-50's 512 -> 2048 1x1 layer at 7x7 ran as 4 such tiles, half the threads
/// idle: 1.3 ms, against 0.3 ms for im2col + OpenBLAS. Elsewhere the L2-sized tiles stay: on
/// pocl-16 the packing rule made 28x28 layers slower relative to OpenBLAS for no packing saved.
template <class T>
im2col_items plan_im2col(const conv2d_shape& s, std::size_t pixels, std::size_t group_channels, std::size_t outer_items,
                         std::size_t workers) {
  constexpr std::size_t nr = memory::panel_width<T>, mr = blocking<T>::mr;
  const std::size_t wanted = ceil_div(2 * workers, outer_items);
  const auto cut_with_tile = [&](std::size_t tile) {
    im2col_items cut{tile, ceil_div(pixels, tile), 0, 0};
    cut.block = std::max(2 * mr, memory::round_up(ceil_div(group_channels, ceil_div(wanted, cut.tiles)), mr));
    cut.blocks = ceil_div(group_channels, cut.block);
    return cut;
  };
  const auto packed_rows = [&](const im2col_items& cut) { return cut.tiles * group_channels + cut.blocks * pixels; };
  const std::size_t fits = std::max<std::size_t>(1, conv_workspace_budget / (s.patch() * nr * sizeof(T))) * nr;
  const im2col_items l2_sized = cut_with_tile(std::min(fits, memory::round_up(ceil_div(pixels, wanted), nr)));
  const double least_packing = std::sqrt(double(wanted) * double(pixels) / double(group_channels));
  const std::size_t tiles = std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(least_packing)), 1, wanted);
  const std::size_t most = std::max<std::size_t>(1, im2col_workspace_limit / (s.patch() * nr * sizeof(T))) * nr;
  const im2col_items least = cut_with_tile(std::min(most, memory::round_up(ceil_div(pixels, tiles), nr)));
  return 4 * packed_rows(least) <= 3 * packed_rows(l2_sized) ? least : l2_sized;
}

/// im2col + packed GEMM over y[:, channels, rows, :] (any group count), in the work items
/// plan_im2col cuts.
template <class T>
void im2col_gemm(thread_pool& pool, const conv_args<T>& args, index_range channels, index_range rows) {
  using B = blocking<T>;
  const conv2d_shape& s = args.shape;
  const std::size_t og = s.group_out_channels(), plane = s.out_height() * s.out_width();
  const std::size_t first_group = channels.begin / og, groups = ceil_div(channels.end, og) - first_group;
  const index_range pixels{rows.begin * s.out_width(), rows.end * s.out_width()};
  const im2col_items cut = plan_im2col<T>(s, pixels.size(), std::min(og, channels.size()), s.batch * groups, pool.size());
  pool.parallel_for(s.batch * groups * cut.tiles * cut.blocks, [&](std::size_t begin, std::size_t end) {
    T* const workspace = conv_workspace<T>(memory::packed_size<T>(cut.tile, s.patch()) * sizeof(T));
    std::size_t packed = SIZE_MAX;  // the (image, group, tile) whose columns the workspace holds
    for (std::size_t item = begin; item < end; ++item) {
      const std::size_t columns = item / cut.blocks, block = item % cut.blocks;
      const std::size_t n = columns / (groups * cut.tiles), g = first_group + columns / cut.tiles % groups;
      const std::size_t p0 = pixels.begin + columns % cut.tiles * cut.tile, count = std::min(cut.tile, pixels.end - p0);
      const std::size_t group_begin = std::max(channels.begin, g * og), group_end = std::min(channels.end, (g + 1) * og);
      const index_range mine{std::min(group_end, group_begin + block * cut.block), std::min(group_end, group_begin + (block + 1) * cut.block)};
      if (mine.size() == 0) continue;  // a group the range cuts holds fewer blocks
      if (columns != packed)
        pack_columns(s, args.x + (n * s.channels + g * s.group_channels()) * s.height * s.width, p0, count, workspace);
      packed = columns;
      gemm_args<T> gemm;
      gemm.x = args.weights + mine.begin * s.patch();
      gemm.ldx = s.patch();
      gemm.panels = workspace;
      gemm.y = args.y + (n * s.out_channels + mine.begin) * plane + p0;
      gemm.ldy = plane;
      gemm.shape = {mine.size(), count, s.patch()};
      gemm.act = args.bias ? activation::none : args.act;  // gemm's bias runs along pixels, not channels
      gemm_block(gemm, {0, mine.size()}, {0, ceil_div(count, B::nr)}, count);
      if (args.bias)
        for (std::size_t o = mine.begin; o < mine.end; ++o) {
          T* const y = args.y + (n * s.out_channels + o) * plane + p0;
          bias_activate(y, y, count, args.bias[o], args.act);
        }
    }
  });
}

/// dst[i] = src[i * stride] for i < count; stride 2 (the common strided case) as a constant, so
/// the compiler vectorises it with shuffles.
template <class T>
void strided_copy(T* dst, const T* src, std::size_t stride, std::size_t count) {
  if (stride == 1)
    std::copy_n(src, count, dst);
  else if (stride == 2)
    for (std::size_t i = 0; i < count; ++i) dst[i] = src[2 * i];
  else
    for (std::size_t i = 0; i < count; ++i) dst[i] = src[i * stride];
}

/// A depthwise plane is computed in blocks of output rows. The input rows under a block are
/// copied, zero-padded, into stride phases: phase (a, b) holds padded[sh * r + a][sw * m + b],
/// for the residues a and b some tap reads. There, tap (kh, kw) of output pixel (i, j) lies at
/// a fixed distance from index i * width + j of one phase, so a block is one flat run of vectors
/// per tap, with no edge cases inside rows: MobileNet's 7- and 14-pixel rows fill vectors as
/// well as its 112-pixel ones (a row at a time, they were scalar on AVX-512 and ran at 2-4
/// GFLOP/s against 24). Columns from out_width to width, and the last chunk's overhang, are
/// computed and dropped: their reads run into the next phase, or past the last one into zeros.
template <class T>
struct depthwise_layout {
  static constexpr std::size_t chunk = 4 * simd<T>::lanes;  ///< outputs accumulated in registers at once

  /// Elements of a phase row: the output row and the columns its window reaches past it.
  static constexpr std::size_t phase_width(const conv2d_shape& s) noexcept {
    return s.out_width() + (s.kernel_w - 1) * s.dilation_w / s.stride_w;
  }
  /// Rows a block's phases hold above its output rows.
  static constexpr std::size_t halo_rows(const conv2d_shape& s) noexcept { return (s.kernel_h - 1) * s.dilation_h / s.stride_h; }
  /// Whether one output row's phases fit 16 workspace budgets. A window dilated across millions
  /// of rows or columns would need gigabytes there; im2col computes such a layer instead.
  static constexpr bool suits(const conv2d_shape& s) noexcept {
    constexpr std::size_t most = 16 * conv_workspace_budget / sizeof(T);
    const std::size_t width = phase_width(s), phases = std::min(s.kernel_h, s.stride_h) * std::min(s.kernel_w, s.stride_w);
    return width <= most && halo_rows(s) + 2 <= most / width / (phases + 1);
  }

  /// The layout of `s` (which suits()) for blocks of at most `rows` output rows: as many as fit
  /// the workspace budget.
  depthwise_layout(const conv2d_shape& s, std::size_t rows)
      : shape(s),
        width(phase_width(s)),
        halo(halo_rows(s)),
        row_phases(residues(s.kernel_h, s.dilation_h, s.stride_h)),
        column_phases(residues(s.kernel_w, s.dilation_w, s.stride_w)) {
    const std::size_t phases = phase_count(), budget = conv_workspace_budget / sizeof(T);
    const std::size_t fixed = phases * halo * width + width + 2 * chunk, per_row = (phases + 1) * width;
    block_rows = std::clamp<std::size_t>(budget > fixed ? (budget - fixed) / per_row : 1, 1, rows);
    phase_size = (block_rows + halo) * width;
    workspace_size = result_offset() + memory::round_up(block_rows * width, chunk);
    for (std::size_t kh = 0; kh < s.kernel_h; ++kh)
      for (std::size_t kw = 0; kw < s.kernel_w; ++kw) {
        const std::size_t dh = kh * s.dilation_h, dw = kw * s.dilation_w;
        const std::size_t phase = index_of(row_phases, dh % s.stride_h) * column_phases.size() + index_of(column_phases, dw % s.stride_w);
        tap_offset.push_back(phase * phase_size + dh / s.stride_h * width + dw / s.stride_w);
      }
  }

  std::size_t phase_count() const noexcept { return row_phases.size() * column_phases.size(); }  ///< phases a block fills
  /// Where a block's results go in the workspace: after its phases and their overhang.
  std::size_t result_offset() const noexcept { return phase_count() * phase_size + width + chunk; }

  /// Fills the phases of output rows `rows` (at most block_rows) from input plane `in`.
  void gather(const T* in, index_range rows, T* const phases) const {
    const conv2d_shape& s = shape;
    for (std::size_t ai = 0; ai < row_phases.size(); ++ai)
      for (std::size_t bi = 0; bi < column_phases.size(); ++bi) {
        T* const phase = phases + (ai * column_phases.size() + bi) * phase_size;
        const std::size_t b = column_phases[bi];
        // Columns m whose input column sw * m + b - pad_left is inside the row: [lo, hi).
        const std::size_t lo = std::min(width, s.pad_left > b ? ceil_div(s.pad_left - b, s.stride_w) : 0);
        const std::size_t hi = std::max(lo, std::min(width, s.width + s.pad_left > b ? ceil_div(s.width + s.pad_left - b, s.stride_w) : 0));
        for (std::size_t r = 0; r < rows.size() + halo; ++r) {
          T* const row = phase + r * width;
          const std::ptrdiff_t ih = std::ptrdiff_t(s.stride_h * (rows.begin + r) + row_phases[ai]) - std::ptrdiff_t(s.pad_top);
          const bool inside = ih >= 0 && ih < std::ptrdiff_t(s.height) && hi > lo;
          std::fill(row, row + (inside ? lo : width), T(0));
          if (!inside) continue;
          strided_copy(row + lo, in + ih * std::ptrdiff_t(s.width) + std::ptrdiff_t(s.stride_w * lo + b - s.pad_left), s.stride_w, hi - lo);
          std::fill(row + hi, row + width, T(0));
        }
      }
    std::fill(phases + phase_count() * phase_size, phases + result_offset(), T(0));  // the overhang
  }

  conv2d_shape shape;
  std::size_t width, halo, block_rows = 1, phase_size = 0, workspace_size = 0;
  /// @{
  std::vector<std::size_t> row_phases, column_phases;  ///< the residues (k * dilation) % stride some tap reads, ascending
  /// @}
  std::vector<std::size_t> tap_offset;  ///< per tap (kh, kw): where its inputs start in the phases

 private:
  static std::vector<std::size_t> residues(std::size_t kernel, std::size_t dilation, std::size_t stride) {
    std::vector<std::size_t> found;
    for (std::size_t k = 0; k < kernel; ++k) found.push_back(k * dilation % stride);
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    return found;
  }
  static std::size_t index_of(const std::vector<std::size_t>& sorted, std::size_t value) {
    return std::size_t(std::lower_bound(sorted.begin(), sorted.end(), value) - sorted.begin());
  }
};

/// One output channel plane, rows [rows.begin, rows.end), where the channel reads one input
/// channel (see depthwise_layout).
template <class T>
void depthwise_plane(const depthwise_layout<T>& layout, const T* in, const T* w, T bias, activation act, T* out, index_range rows) {
  using S = simd<T>;
  constexpr std::size_t vectors = depthwise_layout<T>::chunk / S::lanes;
  const std::size_t taps = layout.tap_offset.size(), ow_count = layout.shape.out_width();
  T* const phases = conv_workspace<T>(layout.workspace_size * sizeof(T));
  T* const result = phases + layout.result_offset();
  for (std::size_t first = rows.begin; first < rows.end; first += layout.block_rows) {
    const index_range block{first, std::min(rows.end, first + layout.block_rows)};
    layout.gather(in, block, phases);
    for (std::size_t q = 0; q < block.size() * layout.width; q += layout.chunk) {
      vec<T> acc[vectors] = {};
      for (std::size_t t = 0; t < taps; ++t) {
        const vec<T> tap = S::broadcast(w[t]);
        const T* x = phases + layout.tap_offset[t] + q;
#pragma GCC unroll 8
        for (std::size_t v = 0; v < vectors; ++v) acc[v] += tap * S::load(x + v * S::lanes);
      }
#pragma GCC unroll 8
      for (std::size_t v = 0; v < vectors; ++v) S::store(result + q + v * S::lanes, acc[v]);
    }
    for (std::size_t i = 0; i < block.size(); ++i)  // one pass: copy out of the workspace, add the bias, activate
      bias_activate(result + i * layout.width, out + (block.begin + i) * ow_count, ow_count, bias, act);
  }
}

template <class T>
void depthwise(thread_pool& pool, const conv_args<T>& args, index_range channels, index_range rows) {
  const conv2d_shape& s = args.shape;
  const std::size_t plane = s.out_height() * s.out_width(), og = s.group_out_channels();
  const depthwise_layout<T> layout(s, rows.size());
  pool.parallel_for(s.batch * channels.size(), [&](std::size_t begin, std::size_t end) {
    for (std::size_t item = begin; item < end; ++item) {
      const std::size_t n = item / channels.size(), o = channels.begin + item % channels.size();
      depthwise_plane(layout, args.x + (n * s.channels + o / og) * s.height * s.width, args.weights + o * s.patch(),
                      args.bias ? args.bias[o] : T(0), args.act, args.y + (n * s.out_channels + o) * plane, rows);
    }
  });
}

}  // namespace detail

/// Default conv2d CpuKernel: direct for one-input-channel convolutions whose window suits its
/// workspace (depthwise_layout::suits), im2col into the packed GEMM for the rest.
struct packed_conv {
  /// Computes y[:, channels, rows, :] and touches nothing else of y.
  template <class T>
  void operator()(thread_pool& pool, const conv_args<T>& args, index_range channels, index_range rows) const {
    if (channels.size() == 0 || rows.size() == 0) return;
    if (args.shape.group_channels() == 1 && detail::depthwise_layout<T>::suits(args.shape))
      detail::depthwise(pool, args, channels, rows);
    else
      detail::im2col_gemm(pool, args, channels, rows);
  }
};

}  // namespace cpu
}  // namespace coexec
