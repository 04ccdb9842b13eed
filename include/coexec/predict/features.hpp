#pragma once
// Features: what the planner's time predictors see of one side of a co-executed layer.
//
// Each operator has a features struct (linear_features, conv_features) with a fixed column
// order, `names`, shared by tools/calibrate.cpp (its CSV header) and the planner (which maps a
// trained model's feature names onto these columns), and the dimensions its output can be cut
// along, `dimensions`. A side's vector holds NaN in the columns that do not apply to it;
// calibrate writes those cells empty, so the trainer leaves them out of that side's model.
//
// linear, for the slice of `n` output channels one side computes (y[M, n] = x[M, K] · W[n, K]ᵀ):
//   m, n, k           the slice's shape
//   flops, bytes      2·m·n·k, and x + W slice + y slice in bytes
//   intensity         flops / bytes
//   critical_flops    FLOPs on the busiest worker: a CPU thread's largest share, or on the
//                     device waves × the FLOPs of one work-group
//   cpu only:  threads, imbalance (busiest thread's share / an even share, from how
//              packed_gemm deals register tiles or panels to threads: ceil vs floor share)
//   gpu only:  compute_units, work_groups, waves (= ceil(work_groups / compute_units)), tile_m, tile_n,
//              family (gpu::gemm_family as a number), dispatch_us (empty-kernel launch and
//              completion on this device, sync::probe)
//
// conv2d, for the slice one side computes along the planned dimension (conv_features):
//   batch, channels, height, width, out_channels, kernel (taps KH·KW), stride, groups
//   slice_channels, slice_rows   the side's output channels and output rows (one of them whole)
//   flops, bytes, intensity      2·batch·slice pixels·channels·patch; the input rows and channels
//                                the slice reads, its weights and its output, in bytes
//   critical_flops               as for linear
//   cpu only:  threads, imbalance (packed_conv's work items per thread: ceil vs even share)
//   gpu only:  compute_units, work_groups, waves, conv_kernel (gpu::conv_kernel as a number),
//              work_group, vector_width (gpu::conv_config), dispatch_us
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "coexec/cpu/conv.hpp"
#include "coexec/cpu/gemm.hpp"
#include "coexec/gpu/conv.hpp"
#include "coexec/gpu/tuning.hpp"
#include "coexec/plan/split_plan.hpp"
#include "coexec/sync/probe.hpp"

namespace coexec::predict {

/// Which side of a co-executed layer a prediction is for.
enum class side : std::uint8_t {
  cpu,  ///< the CPU thread pool
  gpu   ///< the OpenCL device
};

/// "cpu" or "gpu": the suffix of a side's model name in model files.
constexpr std::string_view to_string(side s) noexcept { return s == side::cpu ? "cpu" : "gpu"; }

/// The device's width and fixed launch cost. The probe takes milliseconds, so of() measures a
/// device once per process and shares the result.
struct device_profile {
  unsigned compute_units = 1;  ///< the device's compute units (at least 1)
  double dispatch_us = 0;  ///< enqueue of an empty kernel to the host seeing it complete

  /// Median of 31 probe launches after a warm-up.
  static device_profile measure(const runtime::context& ctx) {
    sync::probe probe(ctx);
    for (int i = 0; i < 3; ++i) probe.launch_spin();
    std::array<double, 31> samples{};
    for (double& sample : samples) {
      const auto start = std::chrono::steady_clock::now();
      probe.launch_spin();
      sample = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    }
    std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
    return {std::max(1u, ctx.caps().compute_units), samples[samples.size() / 2]};
  }

  /// measure(), once per device (name, driver and compute units: sub-devices differ).
  static device_profile of(const runtime::context& ctx) {
    static std::mutex mutex;
    static std::map<std::string, device_profile> known;
    const auto& caps = ctx.caps();
    const std::string key = caps.platform_name + '|' + caps.name + '|' + caps.driver_version + '|' +
                            std::to_string(caps.compute_units);
    std::lock_guard lock(mutex);
    if (auto found = known.find(key); found != known.end()) return found->second;
    return known[key] = measure(ctx);
  }

  /// `op`'s own op.device_profile() where it has one (tests, models of other devices), else of(op.context()).
  template <class Op>
  static device_profile for_op(Op& op) {
    if constexpr (requires { op.device_profile(); })
      return op.device_profile();
    else
      return of(op.context());
  }
};

/// What decides a linear side's time besides its slice: how each side's kernel would run it.
/// Gathered once per shape.
struct linear_setup {
  std::size_t element_size = sizeof(float);  ///< bytes per element: 4 for float, 8 for double
  std::size_t cpu_threads = 1;  ///< threads of the CPU side
  gpu::gemm_config device_config;  ///< the kernel config the device side would use
  device_profile device;  ///< the device's width and launch cost
};

/// The features of one side of an ops::linear, in a fixed column order (see the file comment).
struct linear_features {
  using shape_type = gemm_shape;  ///< the key linear plans are cached by
  using setup_type = linear_setup;  ///< what setup() gathers once per shape

  static constexpr std::string_view op = "linear";  ///< prefix of this operator's model names ("linear/cpu", "linear/gpu")
  /// What a split can cut: output channels only.
  static constexpr std::array<plan::split_dimension, 1> dimensions{plan::split_dimension::channels};
  /// Column names, as in calibration CSV headers and model files.
  static constexpr std::array<std::string_view, 16> names{
      "m",         "n",           "k",             "flops",       "bytes", "intensity", "critical_flops", "threads",
      "imbalance", "compute_units", "work_groups", "waves",       "tile_m", "tile_n",   "family",         "dispatch_us"};
  /// Column indices into a vector, in the order of `names`.
  enum column : std::size_t {
    m, n, k, flops, bytes, intensity, critical_flops, threads,
    imbalance, compute_units, work_groups, waves, tile_m, tile_n, family, dispatch_us
  };
  using vector = std::array<double, names.size()>;  ///< one side's features; NaN where a column does not apply to that side

  /// Asks `op` how it would run `shape`: op.element_size(), op.cpu_threads(),
  /// op.device_config() and either op.device_profile() or op.context() (measured once).
  template <class Op>
  static linear_setup setup(const gemm_shape&, Op& op) {
    return {op.element_size(), op.cpu_threads(), op.device_config(), device_profile::for_op(op)};
  }

  /// Features of `s`'s side computing `columns` (> 0) output channels of `shape`.
  static vector of(side s, const gemm_shape& shape, std::size_t columns, const linear_setup& setup) {
    constexpr double absent = std::numeric_limits<double>::quiet_NaN();
    vector f;
    f.fill(absent);
    const double rows = double(shape.m), cols = double(columns), depth = double(shape.k);
    f[m] = rows;
    f[n] = cols;
    f[k] = depth;
    f[flops] = 2 * rows * cols * depth;
    f[bytes] = double(setup.element_size) * (rows * depth + cols * depth + rows * cols);
    f[intensity] = f[flops] / f[bytes];
    if (s == side::cpu) {
      f[threads] = double(setup.cpu_threads);
      f[imbalance] = setup.element_size == sizeof(double) ? cpu_imbalance<double>(shape.m, columns, setup.cpu_threads)
                                                           : cpu_imbalance<float>(shape.m, columns, setup.cpu_threads);
      f[critical_flops] = f[flops] * f[imbalance] / f[threads];
    } else {
      const gpu::gemm_config& c = setup.device_config;
      f[compute_units] = setup.device.compute_units;
      f[work_groups] = double(ceil_div(columns, c.tile_n) * ceil_div(shape.m, c.tile_m));
      f[waves] = std::ceil(f[work_groups] / f[compute_units]);
      f[critical_flops] = f[waves] * f[flops] / f[work_groups];
      f[tile_m] = c.tile_m;
      f[tile_n] = c.tile_n;
      f[family] = double(static_cast<int>(c.family));
      f[dispatch_us] = setup.device.dispatch_us;
    }
    return f;
  }

  /// The busiest thread's work over an even share when packed_gemm computes `columns` channels
  /// of `rows` rows: M <= 8 deals panels to threads, larger M a grid of register tiles.
  template <class T>
  static double cpu_imbalance(std::size_t rows, std::size_t columns, std::size_t threads) {
    using blocking = cpu::detail::blocking<T>;
    const std::size_t panels = ceil_div(columns, blocking::nr);
    if (rows <= blocking::gemv_max_m) return double(ceil_div(panels, threads) * threads) / double(panels);
    const std::size_t row_tiles = ceil_div(rows, blocking::mr), col_tiles = ceil_div(panels, blocking::tile_panels);
    const auto grid = cpu::detail::choose_grid(threads, row_tiles, col_tiles, 1.0 / blocking::tile_panels);
    const std::size_t busiest = ceil_div(row_tiles, grid.rows) * ceil_div(col_tiles, grid.cols);
    return double(busiest * threads) / double(row_tiles * col_tiles);
  }

 private:
  static constexpr std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }
};

/// What decides a conv2d side's time besides its slice: how each side's kernel would run it.
/// Gathered once per shape.
struct conv_setup {
  std::size_t element_size = sizeof(float);  ///< bytes per element: 4 for float, 8 for double
  std::size_t cpu_threads = 1;  ///< threads of the CPU side
  gpu::conv_config device_config;  ///< the kernel and launch geometry the device side uses
  device_profile device;  ///< the device's width and launch cost
};

/// The features of one side of an ops::conv2d, in a fixed column order (see the file comment).
struct conv_features {
  using shape_type = conv2d_shape;  ///< the key conv plans are cached by
  using setup_type = conv_setup;  ///< what setup() gathers once per shape

  static constexpr std::string_view op = "conv";  ///< prefix of this operator's model names ("conv/cpu", "conv/gpu")
  /// What a split can cut: output channels or output rows.
  static constexpr std::array<plan::split_dimension, 2> dimensions{plan::split_dimension::channels, plan::split_dimension::rows};
  /// Column names, as in calibration CSV headers and model files.
  static constexpr std::array<std::string_view, 23> names{
      "batch",          "channels",  "height",       "width",         "out_channels", "kernel",
      "stride",         "groups",    "slice_channels", "slice_rows",  "flops",        "bytes",
      "intensity",      "critical_flops", "threads", "imbalance",     "compute_units", "work_groups",
      "waves",          "conv_kernel", "work_group", "vector_width",  "dispatch_us"};
  /// Column indices into a vector, in the order of `names`.
  enum column : std::size_t {
    batch, channels, height, width, out_channels, kernel, stride, groups, slice_channels, slice_rows, flops, bytes,
    intensity, critical_flops, threads, imbalance, compute_units, work_groups, waves, conv_kernel, work_group,
    vector_width, dispatch_us
  };
  using vector = std::array<double, names.size()>;  ///< one side's features; NaN where a column does not apply to that side

  /// Asks `op` how it would run `shape`: op.element_size(), op.cpu_threads(),
  /// op.device_config() and either op.device_profile() or op.context() (measured once).
  template <class Op>
  static conv_setup setup(const conv2d_shape&, Op& op) {
    return {op.element_size(), op.cpu_threads(), op.device_config(), device_profile::for_op(op)};
  }

  /// Features of `s`'s side computing `count` (> 0) of `shape`'s output channels or rows (as
  /// `cut` says): the first `count` for the CPU, the last for the device.
  static vector of(side s, const conv2d_shape& shape, plan::split_dimension cut, std::size_t count, const conv_setup& setup) {
    constexpr double absent = std::numeric_limits<double>::quiet_NaN();
    const bool by_channels = cut == plan::split_dimension::channels;
    const std::size_t extent = by_channels ? shape.out_channels : shape.out_height();
    const cpu::index_range part = s == side::cpu ? cpu::index_range{0, count} : cpu::index_range{extent - count, extent};
    const cpu::index_range channel_range = by_channels ? part : cpu::index_range{0, shape.out_channels};
    const cpu::index_range row_range = by_channels ? cpu::index_range{0, shape.out_height()} : part;
    vector f;
    f.fill(absent);
    f[batch] = double(shape.batch);
    f[channels] = double(shape.channels);
    f[height] = double(shape.height);
    f[width] = double(shape.width);
    f[out_channels] = double(shape.out_channels);
    f[kernel] = double(shape.kernel_h * shape.kernel_w);
    f[stride] = double(shape.stride_h);
    f[groups] = double(shape.groups);
    f[slice_channels] = double(channel_range.size());
    f[slice_rows] = double(row_range.size());
    const double pixels = double(shape.batch * row_range.size() * shape.out_width());
    f[flops] = 2 * pixels * f[slice_channels] * double(shape.patch());
    f[bytes] = double(setup.element_size) * (input_read(shape, channel_range, row_range) +
                                             f[slice_channels] * double(shape.patch()) + pixels * f[slice_channels]);
    f[intensity] = f[flops] / f[bytes];
    if (s == side::cpu) {
      f[threads] = double(setup.cpu_threads);
      f[imbalance] = setup.element_size == sizeof(double) ? cpu_imbalance<double>(shape, channel_range, row_range, setup.cpu_threads)
                                                           : cpu_imbalance<float>(shape, channel_range, row_range, setup.cpu_threads);
      f[critical_flops] = f[flops] * f[imbalance] / f[threads];
    } else {
      const gpu::conv_config& c = setup.device_config;
      f[compute_units] = setup.device.compute_units;
      f[work_groups] = double(c.work_groups(shape, channel_range.size(), row_range.size()));
      f[waves] = std::ceil(f[work_groups] / f[compute_units]);
      f[critical_flops] = f[waves] * f[flops] / f[work_groups];
      f[conv_kernel] = double(static_cast<int>(c.kernel));
      f[work_group] = double(c.work_group);
      f[vector_width] = double(c.vector_width);
      f[dispatch_us] = setup.device.dispatch_us;
    }
    return f;
  }

  /// The busiest thread's work over an even share when packed_conv computes the block: it deals
  /// its work items (depthwise: one per image and channel; im2col: per image, group, pixel tile
  /// and channel block, cpu::detail::plan_im2col) to threads in contiguous chunks.
  template <class T>
  static double cpu_imbalance(const conv2d_shape& s, cpu::index_range channel_range, cpu::index_range row_range,
                              std::size_t threads) {
    std::size_t items = s.batch * channel_range.size();
    if (s.group_channels() != 1) {
      const std::size_t og = s.group_out_channels();
      const std::size_t group_count = ceil_div(channel_range.end, og) - channel_range.begin / og;
      const std::size_t pixels = row_range.size() * s.out_width();
      const auto cut = cpu::detail::plan_im2col<T>(s, pixels, std::min(og, channel_range.size()), s.batch * group_count, threads);
      items = s.batch * group_count * cut.tiles * cut.blocks;
    }
    return double(ceil_div(items, threads) * threads) / double(items);
  }

 private:
  // Input elements the block reads: the input channels of the groups it touches, the input rows
  // its output rows' windows cover.
  static double input_read(const conv2d_shape& s, cpu::index_range channel_range, cpu::index_range row_range) {
    const std::size_t og = s.group_out_channels();
    const std::size_t group_count = ceil_div(channel_range.end, og) - channel_range.begin / og;
    const std::size_t window = s.dilation_h * (s.kernel_h - 1) + 1;
    const std::size_t rows = std::min(s.height, (row_range.size() - 1) * s.stride_h + window);
    return double(s.batch * group_count * s.group_channels() * rows * s.width);
  }

  static constexpr std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }
};

/// The features struct of the operator whose plans are keyed by `Shape`.
template <class Shape>
struct features_of;

template <>
/// gemm_shape keys plans of ops::linear.
struct features_of<gemm_shape> {
  using type = linear_features;  ///< the features of linear
};

template <>
/// conv2d_shape keys plans of ops::conv2d.
struct features_of<conv2d_shape> {
  using type = conv_features;  ///< the features of conv2d
};

}  // namespace coexec::predict
