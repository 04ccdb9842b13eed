#pragma once
// coexec::gpu::attention_launcher — runs the device side of ops::attention: a block of heads of
// multi-head self-attention (kernels/attention.cl), read from a fused QKV tensor and written
// straight into the shared output (or a staging buffer).
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>

#include "coexec/cpu/attention.hpp"
#include "coexec/error.hpp"
#include "coexec/gpu/gemm.hpp"
#include "coexec/kernels/activation.hpp"
#include "coexec/kernels/attention.hpp"
#include "coexec/kernels/sync.hpp"

namespace coexec::gpu {

/// Which kernel of kernels/attention.cl, and its work-group shape.
struct attention_config {
  bool tiled = false;  ///< the tiled kernel (GPUs with fast local memory), else a work-item per row
  unsigned rows = 16;  ///< query rows per work-group
  unsigned keys = 16;  ///< keys staged per tile (rows kernel: the vector width of the scores)
  unsigned threads = 16;  ///< work-items per group: `rows` for the rows kernel
  unsigned vector_width = 16;  ///< rows kernel: vector width along a head's features

  /// The tiled kernel where local memory is fast and holds its tiles for heads of `head_dim`
  /// elements of `element_size` bytes, else the rows kernel: 16 rows per group on CPU devices (a
  /// group runs on one core; small groups spread a sequence over more cores), 32 on GPUs.
  static attention_config for_device(const runtime::capabilities& caps, std::size_t head_dim, std::size_t element_size) {
    const attention_config tiled_config{true, 16, 32, 128, 1};
    if (fast_local_memory(caps) && tiled_config.local_memory(head_dim, element_size) <= caps.local_mem_size &&
        tiled_config.threads <= caps.max_work_group_size)
      return tiled_config;
    attention_config config;
    config.rows = config.threads = caps.is_cpu ? 16 : 32;
    while (head_dim % config.vector_width != 0) config.vector_width /= 2;
    return config;
  }

  /// Local memory the kernel declares, in bytes, for heads of `head_dim` elements of `element_size` bytes.
  std::size_t local_memory(std::size_t head_dim, std::size_t element_size) const {
    if (!tiled) return 2 * keys * head_dim * element_size;
    return (rows * head_dim + keys * (head_dim + 1) + keys * head_dim + rows * keys + 3 * rows) * element_size;
  }

  /// errc::invalid_argument unless the parameters fit together for heads of `head_dim` features.
  void validate(std::size_t head_dim) const {
    const auto vector = [](unsigned w, bool one_allowed) { return w == 2 || w == 4 || w == 8 || w == 16 || (one_allowed && w == 1); };
    require(rows > 0 && keys > 0 && threads > 0, "attention_config: rows, keys and threads must be positive");
    if (!tiled)
      require(threads == rows && vector(keys, false) && vector(vector_width, true) && head_dim % vector_width == 0,
              "attention_config: the rows kernel needs threads == rows, keys 2, 4, 8 or 16, and a vector_width of 1, 2, 4, 8 or 16 "
              "that divides head_dim " + std::to_string(head_dim));
  }

  /// The -D defines for kernels/attention.cl (the launcher adds T, HEAD_DIM and WIDTH).
  std::string defines() const {
    const auto define = [](const char* name, unsigned value) { return std::string(" -D") + name + "=" + std::to_string(value); };
    return define("COEXEC_ATTENTION_TILED", tiled ? 1 : 0) + define("ROWS", rows) + define("KEYS", keys) + define("THREADS", threads) +
           define("VW", vector_width);
  }
};

template <class T>
/// Builds the attention kernel for one shape's heads and launches it on one context; enqueue
/// from one thread at a time (the kernel holds argument state).
class attention_launcher {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "attention_launcher supports float and double");

 public:
  /// Builds `config`'s kernel (by default the device's: attention_config::for_device) for heads
  /// of `shape` (any number of tokens); errc::unsupported for double without fp64 or a config
  /// the device cannot run, errc::invalid_argument for one that does not fit together.
  attention_launcher(const runtime::context& ctx, const cpu::attention_shape& shape, std::optional<attention_config> config = {})
      : context_(ctx), shape_(shape), config_(config.value_or(attention_config::for_device(ctx.caps(), shape.head_dim, sizeof(T)))) {
    config_.validate(shape.head_dim);
    if constexpr (std::is_same_v<T, double>)
      if (!ctx.caps().fp64) throw error(errc::unsupported, "device '" + ctx.caps().name + "' has no fp64");
    const std::size_t local = config_.local_memory(shape.head_dim, sizeof(T));
    if (local > ctx.caps().local_mem_size || config_.threads > ctx.caps().max_work_group_size)
      throw error(errc::unsupported, "attention: heads of " + std::to_string(shape.head_dim) + " features need " + std::to_string(local) +
                                         " bytes of local memory and work-groups of " + std::to_string(config_.threads) + "; device '" +
                                         ctx.caps().name + "' has " + std::to_string(ctx.caps().local_mem_size) + " and " +
                                         std::to_string(ctx.caps().max_work_group_size));
    const std::string options = std::string("-DT=") + (std::is_same_v<T, float> ? "float" : "double") + " -DHEAD_DIM=" +
                                std::to_string(shape.head_dim) + " -DWIDTH=" + std::to_string(shape.width()) + config_.defines();
    kernel_ = ctx.kernel(source(), "coexec_attention", options);
  }

  /// sync.cl + activation.cl (its fp64 pragma) + attention.cl.
  static const std::string& source() {
    static const std::string joined = kernels::sync() + kernels::activation() + kernels::attention();
    return joined;
  }

  const attention_config& config() const noexcept { return config_; }  ///< the kernel and work-group shape in use

  /// Enqueues heads [head_begin, head_begin + head_count) of `tokens` rows behind `gate` and
  /// flushes: qkv holds the whole {tokens, 3D} tensor's layout (at least the block's columns),
  /// y the block's first output column with row stride `ldy`. Wait with `done.wait(event)`.
  cl::Event enqueue(const device_ptr<const T>& qkv, const device_ptr<T>& y, std::size_t ldy, std::size_t tokens, std::size_t head_begin,
                    std::size_t head_count, sync::completion& done, const sync::launch_gate& gate = {}) {
    require(tokens > 0 && head_count > 0 && head_begin + head_count <= shape_.heads,
            "attention: heads [" + std::to_string(head_begin) + ", " + std::to_string(head_begin + head_count) + ") of " +
                std::to_string(tokens) + " tokens is not a block of the kernel's " + std::to_string(shape_.heads) + " heads");
    require(ldy >= head_count * shape_.head_dim, "attention: ldy is shorter than the block's columns");
    detail::require_extent(context_, qkv, tokens * 3 * shape_.width(), "attention: qkv");
    detail::require_extent(context_, y, (tokens - 1) * ldy + head_count * shape_.head_dim, "attention: y");
    detail::require_gate_support(context_, gate, "attention");

    detail::kernel_args args(kernel_);
    args.pointer(qkv).pointer(y).size(ldy).size(tokens).size(head_begin).gate(gate);
    done.bind(kernel_, args.next());
    const cl::NDRange global((tokens + config_.rows - 1) / config_.rows * config_.threads, head_count);
    return detail::launch(context_, kernel_, global, cl::NDRange(config_.threads, 1), "clEnqueueNDRangeKernel(attention)");
  }

 private:
  runtime::context context_;
  cpu::attention_shape shape_;
  attention_config config_;
  cl::Kernel kernel_;
};

}  // namespace coexec::gpu
