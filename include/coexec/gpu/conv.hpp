#pragma once
// coexec::gpu::conv_launcher — runs the device side of a conv2d: a block of output channels x
// output rows written straight into the shared output (or a staging buffer). Three kernels
// (kernels/conv.cl), built per window (kernel, stride, dilation, padded or not) with -D constants:
//   depthwise  one input channel per output channel, 3x3 or 5x5, stride 1 or 2, unit dilation:
//              each work-item slides down ROWS outputs of a column, reusing input rows
//   igemm      everything else on CPU-like devices, 1x1 included: implicit GEMM, a work-item owns
//              VW pixels of a row and OB output channels, so each input value loaded feeds OB
//              multiply-adds, with no local memory and no barriers
//   tiled      everything else of one group on GPUs with fast local memory: implicit GEMM through
//              local-memory tiles of channels x pixels, so a long reduction over few pixels (deep
//              ResNet layers) still fills the device
// 1x1 layers need no separate GEMM path: with the window folded at compile time, the implicit
// GEMMs read their B operand straight from NCHW, which the panel-layout GEMM would first have to
// transpose.
#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "coexec/activation.hpp"
#include "coexec/cpu/conv.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/gpu/gemm.hpp"
#include "coexec/kernels/activation.hpp"
#include "coexec/kernels/conv.hpp"
#include "coexec/kernels/sync.hpp"

namespace coexec::gpu {

/// Which OpenCL convolution kernel runs a layer (see the file comment). The numbers are the
/// planner's conv_kernel feature: keep them.
enum class conv_kernel {
  igemm = 0,      ///< implicit GEMM without local memory: any shape, CPU-like devices
  depthwise = 1,  ///< one input channel per output channel, 3x3 or 5x5, stride 1 or 2, no dilation
  tiled = 2       ///< implicit GEMM through local-memory tiles: one group, GPUs with fast local memory
};

/// Name of a conv kernel, for logs and benchmark output.
constexpr const char* to_string(conv_kernel kernel) noexcept {
  return kernel == conv_kernel::igemm ? "igemm" : kernel == conv_kernel::depthwise ? "depthwise" : "tiled";
}

/// Whether `kernel` can compute `s`: igemm computes every shape.
constexpr bool supports(conv_kernel kernel, const conv2d_shape& s) noexcept {
  if (kernel == conv_kernel::tiled) return s.groups == 1;
  if (kernel == conv_kernel::igemm) return true;
  const bool square = s.kernel_h == s.kernel_w && (s.kernel_h == 3 || s.kernel_h == 5);
  const bool stride = s.stride_h == s.stride_w && (s.stride_h == 1 || s.stride_h == 2);
  const bool one_to_one = s.group_channels() == 1 && s.group_out_channels() == 1;
  return one_to_one && square && stride && s.dilation_h == 1 && s.dilation_w == 1;
}

/// The kernel for `s`: depthwise where it applies, else tiled where the device should run it
/// (`prefer_tiled`: fast local memory, and room for a tile), else igemm.
constexpr conv_kernel choose_kernel(const conv2d_shape& s, bool prefer_tiled) noexcept {
  if (supports(conv_kernel::depthwise, s)) return conv_kernel::depthwise;
  return prefer_tiled && supports(conv_kernel::tiled, s) ? conv_kernel::tiled : conv_kernel::igemm;
}

/// The tiled kernel's work-group is tiled_side x tiled_side work-items (kernels/conv.cl: THREADS_SIDE).
inline constexpr std::size_t tiled_side = 16;
/// Reduction steps the tiled kernel stages in local memory at a time (kernels/conv.cl: TILE_K).
inline constexpr std::size_t tiled_step = 16;

/// Local memory the tiled kernel's `tile` takes: its two staged tiles, the weights' padded by one.
constexpr std::size_t tiled_local_bytes(std::size_t element_size, std::size_t tile) noexcept {
  return tiled_step * (2 * tile + 1) * element_size;
}

/// Whether a device runs the tiled kernel's `tile` for `element_size`-byte elements: its
/// work-group and its local memory.
inline bool tiled_fits(const runtime::capabilities& caps, std::size_t element_size, std::size_t tile) noexcept {
  return caps.max_work_group_size >= tiled_side * tiled_side && caps.local_mem_size >= tiled_local_bytes(element_size, tile);
}

/// The largest tile (64, 32 or 16) tiled_fits on the device; 0 where none does.
inline std::size_t largest_tile(const runtime::capabilities& caps, std::size_t element_size) noexcept {
  for (std::size_t tile : {64, 32, 16})
    if (tiled_fits(caps, element_size, tile)) return tile;
  return 0;
}

/// The tiled kernel's default tile for `s` on a device of `compute_units`: the largest, up to
/// `largest`, of which the whole layer has at least one per compute unit (64, 32 or 16 channels x
/// pixels: 4 x 4, 2 x 2 or 1 output per work-item), so that small deep layers still fill the
/// device; 16 where none does.
constexpr std::size_t default_tile(const conv2d_shape& s, std::size_t compute_units, std::size_t largest) noexcept {
  for (std::size_t side : {64, 32})
    if (side <= largest &&
        cpu::detail::ceil_div(s.out_channels, side) * cpu::detail::ceil_div(s.out_height() * s.out_width(), side) * s.batch >=
            compute_units)
      return side;
  return 16;
}

/// A device kernel for one conv layer, as a tuner or a user picks it: the kernel and, for
/// tiled, the tile side (64, 32 or 16; 0 leaves it to default_tile).
struct conv_choice {
  conv_kernel kernel = conv_kernel::igemm;  ///< which kernel
  std::size_t tile = 0;  ///< tiled only: output channels and pixels per work-group (0: default_tile)

  /// "igemm", "depthwise" or "tiled tile=<side>", as in tuning files.
  std::string to_string() const {
    return kernel == conv_kernel::tiled ? std::string("tiled tile=") + std::to_string(tile) : gpu::to_string(kernel);
  }
  friend constexpr bool operator==(const conv_choice&, const conv_choice&) = default;
};

/// What a device runs `s` with, untuned: choose_kernel (tiled on devices with fast local memory
/// and room for a tile) and default_tile.
inline conv_choice default_choice(const runtime::capabilities& caps, const conv2d_shape& s, std::size_t element_size) {
  const std::size_t largest = largest_tile(caps, element_size);
  const conv_kernel kernel = choose_kernel(s, fast_local_memory(caps) && largest != 0);
  return {kernel, kernel == conv_kernel::tiled ? default_tile(s, std::max(1u, caps.compute_units), largest) : 0};
}

/// The choices a tuner times for `s` on `caps`: default_choice first, then the other kernels
/// and tiles that can compute it. CPU-like devices try no tiled kernel: without fast local
/// memory its staging only costs.
inline std::vector<conv_choice> conv_candidates(const runtime::capabilities& caps, const conv2d_shape& s, std::size_t element_size) {
  std::vector<conv_choice> list{default_choice(caps, s, element_size)};
  const auto add = [&](conv_choice c) {
    if (supports(c.kernel, s) && std::find(list.begin(), list.end(), c) == list.end()) list.push_back(c);
  };
  if (fast_local_memory(caps))
    for (std::size_t tile : {64, 32, 16})
      if (tiled_fits(caps, element_size, tile)) add({conv_kernel::tiled, tile});
  add({conv_kernel::igemm, 0});
  add({conv_kernel::depthwise, 0});
  return list;
}

/// Output channels an igemm work-item computes: 8, or the largest power of two dividing the
/// group's channels, so that no block straddles two groups.
constexpr std::size_t channel_block(const conv2d_shape& s) noexcept {
  if (s.groups == 1) return 8;
  std::size_t block = 8;
  while (s.group_out_channels() % block != 0) block /= 2;
  return block;
}

/// How conv_launcher runs a shape on the device: the kernel and its launch geometry. A value
/// type, so the planner's features can count the work-groups of any block without a launcher.
struct conv_config {
  static constexpr std::size_t rows_per_item = 4;  ///< output rows a depthwise work-item slides down

  conv_kernel kernel = conv_kernel::igemm;  ///< which kernel runs the shape
  std::size_t work_group = 64;  ///< work-items per group
  std::size_t vector_width = 4;  ///< adjacent outputs of a row one work-item computes (igemm, depthwise)
  std::size_t tile = 0;  ///< output channels and pixels of a tiled work-group's tile (tiled only)
  /// Depthwise on CPU devices: one-item work-groups that stage channel planes in local memory.
  bool staged = false;
  std::size_t compute_units = 1;  ///< the device's: how many staged groups keep it busy

  /// Channel planes a staged group takes, while that leaves 4 groups per compute unit: PoCL
  /// spends about 250 ns launching a group, more than a 7x7 plane's taps take.
  static constexpr std::size_t staged_planes = 8;
  /// Staged groups per image for a block of `channels`; each takes ceil(channels / groups).
  std::size_t staged_groups(std::size_t channels) const noexcept {
    const std::size_t groups = std::min(channels, std::max(cpu::detail::ceil_div(channels, staged_planes), 4 * compute_units));
    return cpu::detail::ceil_div(channels, cpu::detail::ceil_div(channels, groups));
  }

  /// Elements of a staged input row: its taps' span and a vector's overhang (as kernels/conv.cl computes it).
  std::size_t staged_pitch(const conv2d_shape& s) const noexcept {
    return memory::round_up(s.out_width(), vector_width) * s.stride_w + (s.kernel_w - 1) * s.dilation_w +
           vector_width * s.stride_w;
  }
  /// Whether a staged plane, the input rows under every output row, fits `elements`; checked
  /// before multiplying, so that a huge layer never wraps around into a small plane.
  bool staged_fits(const conv2d_shape& s, std::size_t elements) const noexcept {
    if (s.out_width() > elements || s.out_height() > elements) return false;
    const std::size_t rows = (s.out_height() - 1) * s.stride_h + (s.kernel_h - 1) * s.dilation_h + 1;
    return rows <= elements && staged_pitch(s) <= elements / rows;
  }

  /// 1x1 at stride 1 without padding: the kernel walks the block's pixels as one row.
  static constexpr bool flat(const conv2d_shape& s) noexcept {
    return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && !s.padded();
  }

  /// The NDRange of a block of `channels` output channels x `rows` output rows of every image.
  /// Dimension 0: one work-item per vector of VW outputs of a row (of the whole block for a flat
  /// 1x1 layer, whose pixels are contiguous), times ROWS rows for depthwise.
  /// For tiled, dimension 0 runs over tiles of the block's pixels and 1 over tiles of its channels.
  std::array<std::size_t, 3> global_size(const conv2d_shape& s, std::size_t channels, std::size_t rows) const noexcept {
    if (kernel == conv_kernel::tiled) {
      const auto tiles = [&](std::size_t extent) { return cpu::detail::ceil_div(extent, tile) * tiled_side; };
      return {tiles(rows * s.out_width()), tiles(channels), s.batch};
    }
    const auto vectors = [&](std::size_t width) { return cpu::detail::ceil_div(width, vector_width); };
    const bool depthwise = kernel == conv_kernel::depthwise;
    if (depthwise && staged) return {1, staged_groups(channels), s.batch};
    const std::size_t items = depthwise    ? cpu::detail::ceil_div(rows, rows_per_item) * vectors(s.out_width())
                              : flat(s)    ? vectors(rows * s.out_width())
                                           : rows * vectors(s.out_width());
    const std::size_t padded = memory::round_up(items, work_group);
    if (depthwise) return {padded, s.batch * channels, 1};
    return {padded, s.batch, cpu::detail::ceil_div(channels, channel_block(s))};
  }

  /// The work-group's shape: tiled_side x tiled_side for tiled, work_group x 1 otherwise.
  std::array<std::size_t, 3> local_size() const noexcept {
    if (kernel == conv_kernel::tiled) return {tiled_side, tiled_side, 1};
    return {work_group, 1, 1};
  }

  /// Work-groups of such a block.
  std::size_t work_groups(const conv2d_shape& s, std::size_t channels, std::size_t rows) const noexcept {
    const auto global = global_size(s, channels, rows);
    const auto local = local_size();
    return global[0] / local[0] * (global[1] / local[1]) * global[2];
  }
};

/// The operands of one block: x at image 0; w and bias at the block's first channel; y at
/// y[0][first channel][first row][0], addressed with the given image and channel strides.
template <class T>
struct conv_operands {
  device_ptr<const T> x;  ///< input at image 0
  device_ptr<const T> w;  ///< weights at the block's first output channel
  device_ptr<const T> bias;  ///< bias at the block's first output channel (null without bias)
  device_ptr<T> y;  ///< output at y[0][first channel][first row][0]
  /// @{
  std::size_t y_batch_stride = 0, y_channel_stride = 0;  ///< elements between images and between channels of y
  /// @}
};

template <class T>
/// Builds and launches the conv kernel chosen for one conv2d_shape on one context. Its kernel
/// holds argument state: enqueue from one thread at a time.
class conv_launcher {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "conv_launcher supports float and double");

 public:
  /// Split points along channels are multiples of this; it is a multiple of channel_block.
  static constexpr std::size_t channel_granule = memory::panel_width<T>;

  /// Builds the kernel for `shape` with `act` and, if `has_bias`, the bias fused in: `choice`,
  /// or default_choice's where none is given. errc::unsupported for double on a device without
  /// fp64 or a tile the device cannot run (tiled_fits); errc::invalid_argument for a kernel that
  /// cannot compute the shape or a tile other than 0, 16, 32 and 64.
  conv_launcher(const runtime::context& ctx, const conv2d_shape& shape, activation act, bool has_bias,
                std::optional<conv_choice> choice = std::nullopt)
      : context_(ctx), shape_(shape), has_bias_(has_bias) {
    if constexpr (std::is_same_v<T, double>)
      if (!ctx.caps().fp64) throw error(errc::unsupported, "device '" + ctx.caps().name + "' has no fp64");
    const bool cpu_like = !fast_local_memory(ctx.caps());
    const conv2d_shape& s = shape_;
    std::string options = std::string("-DT=") + (std::is_same_v<T, float> ? "float" : "double") +
                          " -DCOEXEC_ACT=" + std::to_string(kernel_code(act)) + " -DCOEXEC_HAS_BIAS=" + (has_bias ? "1" : "0");
    const auto define = [&](const char* name, std::size_t value) { options += std::string(" -D") + name + "=" + std::to_string(value); };
    define("KH", s.kernel_h), define("KW", s.kernel_w), define("SH", s.stride_h), define("SW", s.stride_w);
    define("DH", s.dilation_h), define("DW", s.dilation_w), define("PADDED", s.padded() ? 1 : 0);
    const conv_choice chosen = choice.value_or(default_choice(ctx.caps(), s, sizeof(T)));
    config_.kernel = chosen.kernel;
    require(supports(config_.kernel, s), std::string("conv: the ") + to_string(config_.kernel) +
                                             " kernel cannot compute this layer (tiled: groups must be 1; depthwise: "
                                             "one channel per group, 3x3 or 5x5, stride 1 or 2, no dilation)");
    config_.vector_width = choose_vector_width(ctx, s);
    // Staged planes are sized per device, not per layer: one program serves every plane of a window.
    const std::size_t local_elements = std::min<std::size_t>(ctx.caps().local_mem_size, staged_plane_bytes) / sizeof(T);
    config_.staged = cpu_like && config_.kernel == conv_kernel::depthwise && config_.staged_fits(s, local_elements);
    config_.work_group = config_.staged ? 1 : cpu_like ? cpu_work_group : gpu_work_group;
    config_.compute_units = std::max(1u, ctx.caps().compute_units);
    define("WG", config_.work_group), define("VW", config_.vector_width);
    if (config_.kernel == conv_kernel::depthwise) {
      if (config_.staged)
        define("PLANE", local_elements);
      else
        define("ROWS", conv_config::rows_per_item);
      kernel_ = ctx.kernel(source(), "coexec_conv_depthwise", options);
    } else if (config_.kernel == conv_kernel::tiled) {
      require(chosen.tile == 0 || chosen.tile == 16 || chosen.tile == 32 || chosen.tile == 64,
              "conv: the tiled kernel's tile must be 16, 32 or 64 (0: chosen by the layer's size), got " + std::to_string(chosen.tile));
      const std::size_t largest = largest_tile(ctx.caps(), sizeof(T));
      config_.tile = chosen.tile != 0 ? chosen.tile : default_tile(s, std::max(1u, ctx.caps().compute_units), largest);
      if (!tiled_fits(ctx.caps(), sizeof(T), config_.tile))
        throw error(errc::unsupported, "conv: device '" + ctx.caps().name + "' cannot run the tiled kernel's tile " +
                                           std::to_string(config_.tile) + ": it needs " + std::to_string(tiled_side * tiled_side) +
                                           " work-items per group and " + std::to_string(tiled_local_bytes(sizeof(T), config_.tile)) +
                                           " bytes of local memory");
      config_.work_group = tiled_side * tiled_side;
      define("TILE", config_.tile);
      kernel_ = ctx.kernel(source(), "coexec_conv_tiled", options);
    } else {
      define("OB", channel_block(s));
      kernel_ = ctx.kernel(source(), "coexec_conv_igemm", options);
    }
  }

  /// sync.cl + activation.cl + conv.cl.
  static const std::string& source() {
    static const std::string joined = kernels::sync() + kernels::activation() + kernels::conv();
    return joined;
  }

  conv_kernel kernel() const noexcept { return config_.kernel; }  ///< which kernel was chosen for the shape
  const conv_config& config() const noexcept { return config_; }  ///< the kernel and launch geometry chosen for the shape

  /// Enqueues output channels `channels` x output rows `rows` (both non-empty) of every image
  /// behind `gate` and flushes; wait with `done.wait(event)`.
  cl::Event enqueue(const conv_operands<T>& ops, cpu::index_range channels, cpu::index_range rows, sync::completion& done,
                    const sync::launch_gate& gate = {}) {
    const conv2d_shape& s = shape_;
    require(channels.size() != 0 && rows.size() != 0 && channels.end <= s.out_channels && rows.end <= s.out_height(),
            "conv: channels [" + std::to_string(channels.begin) + ", " + std::to_string(channels.end) + ") and rows [" +
                std::to_string(rows.begin) + ", " + std::to_string(rows.end) + ") must be non-empty parts of the output's " +
                std::to_string(s.out_channels) + " channels and " + std::to_string(s.out_height()) + " rows");
    require(config_.kernel == conv_kernel::tiled || channels.begin % channel_block(s) == 0,
            "conv: channels.begin (" + std::to_string(channels.begin) + ") must be a multiple of the channel block " +
                std::to_string(channel_block(s)));
    require(has_bias_ != ops.bias.is_null(), has_bias_ ? "conv: the launcher adds a bias but none was given"
                                                       : "conv: a bias was given to a launcher built without one");
    const std::size_t plane = rows.size() * s.out_width();
    require(ops.y_channel_stride >= plane, "conv: y_channel_stride (" + std::to_string(ops.y_channel_stride) +
                                               ") is less than the block's rows * out_width (" + std::to_string(plane) + ")");
    require(s.batch == 1 || ops.y_batch_stride >= channels.size() * ops.y_channel_stride,
            "conv: y_batch_stride (" + std::to_string(ops.y_batch_stride) + ") is less than the block's channels * y_channel_stride (" +
                std::to_string(channels.size() * ops.y_channel_stride) + ")");
    detail::require_extent(context_, ops.x, s.input_size(), "conv: x");
    detail::require_extent(context_, ops.w, channels.size() * s.patch(), "conv: w");
    detail::require_extent(context_, ops.y, (s.batch - 1) * ops.y_batch_stride + (channels.size() - 1) * ops.y_channel_stride + plane, "conv: y");
    if (has_bias_) detail::require_extent(context_, ops.bias, channels.size(), "conv: bias");
    detail::require_gate_support(context_, gate, "conv");

    detail::kernel_args args(kernel_);
    args.pointer(ops.x).pointer(ops.w).pointer(ops.bias).pointer(ops.y).size(ops.y_batch_stride).size(ops.y_channel_stride);
    for (std::size_t size : {s.channels, s.height, s.width, s.out_width(), s.group_channels(), s.group_out_channels(), s.pad_top, s.pad_left})
      args.size(size);
    args.size(channels.begin).size(channels.size()).size(rows.begin).size(rows.size()).gate(gate);
    done.bind(kernel_, args.next());

    const auto size = config_.global_size(s, channels.size(), rows.size());
    const auto local = config_.local_size();
    return detail::launch(context_, kernel_, cl::NDRange(size[0], size[1], size[2]), cl::NDRange(local[0], local[1], local[2]),
                          "clEnqueueNDRangeKernel(conv)");
  }

 private:
  // A work-item computes one explicit vector of VW adjacent outputs per row and channel (the
  // kernels' loads and weight broadcasts are written for it), so PoCL need not vectorise across
  // work-items: a few work-items per group keep neighbouring vectors on one core. GPUs take
  // the usual 64-wide groups.
  static constexpr std::size_t cpu_work_group = 4;
  static constexpr std::size_t gpu_work_group = 64;
  // A staged depthwise plane stays in a CPU core's L2 beside the output rows it feeds.
  static constexpr std::size_t staged_plane_bytes = 128 * 1024;

  /// Outputs per work-item along a row: on CPU-like devices one SIMD register (the device's
  /// native vector width for T, 8 floats on AVX2, 16 on AVX-512: wider spills the OB
  /// accumulators), halved for narrow rows, which would otherwise waste most lanes; 4 on GPUs
  /// (neighbouring work-items then read neighbouring 16-byte vectors).
  static std::size_t choose_vector_width(const runtime::context& ctx, const conv2d_shape& s) {
    const runtime::capabilities& caps = ctx.caps();
    if (fast_local_memory(caps)) return 4;
    cl_uint native = 0;
    ctx.device().getInfo(std::is_same_v<T, float> ? CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT : CL_DEVICE_NATIVE_VECTOR_WIDTH_DOUBLE, &native);
    std::size_t vw = 4;
    while (vw < 16 && vw < native) vw *= 2;
    const std::size_t width = conv_config::flat(s) ? s.out_height() * s.out_width() : s.out_width();
    while (vw > 4 && width <= vw * 3 / 4) vw /= 2;
    return vw;
  }

  runtime::context context_;
  conv2d_shape shape_;
  conv_config config_;
  bool has_bias_;
  cl::Kernel kernel_;
};

}  // namespace coexec::gpu
