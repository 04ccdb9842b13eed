#pragma once
// coexec::gpu::gemm_launcher — runs the device side of a dense layer: one column slice of
// y[M,N] = act(x[M,K] * W[N,K]^T + bias) with W in the panel layout (memory/panels.hpp), written
// straight into the shared output. Three kernel families (kernels/gemm.cl), chosen per device
// by gpu/tuning.hpp:
//   local             tiles staged in local memory, register-blocked: GPUs with fast local memory
//   register_blocked  no local memory, a CPU-style micro-kernel per work-item: PoCL, Mali
//   gemv              small M, memory bound: each panel streamed once, k split across work-items
// Operands are SVM pointers (fine-grained devices: no copies) or cl::Buffers (discrete GPUs:
// weights resident on the device, x and y staged with write_rows / read_rows).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "coexec/activation.hpp"
#include "coexec/config.hpp"
#include "coexec/error.hpp"
#include "coexec/kernels/activation.hpp"
#include "coexec/kernels/gemm.hpp"
#include "coexec/kernels/sync.hpp"
#include "coexec/memory/panels.hpp"
#include "coexec/runtime/context.hpp"
#include "coexec/sync/completion.hpp"
#include "coexec/sync/spin_flag.hpp"
#include "coexec/fault_injection.hpp"

namespace coexec::gpu {

/// Whether a device's local memory is fast memory of its own (a GPU's), not ordinary memory (CPU
/// devices, Mali), for which the kernels without local memory are written.
inline bool fast_local_memory(const runtime::capabilities& caps) noexcept { return !(caps.is_cpu || caps.local_mem_is_global); }

/// GEMM kernel families of kernels/gemm.cl; see gemm_config for their tile parameters.
enum class gemm_family { local, register_blocked, gemv };

/// Name of a family, for logs and the tuning file ("register" for register_blocked).
constexpr const char* to_string(gemm_family family) noexcept {
  switch (family) {
    case gemm_family::local: return "local";
    case gemm_family::register_blocked: return "register";
    case gemm_family::gemv: return "gemv";
  }
  return "unknown";
}

/// Tile parameters of one kernel family; sizes count elements of T.
///   local             work-group (tile_n / micro_n) x (tile_m / micro_m); k staged tile_k deep;
///                     W read as vector_width-wide vectors
///   register_blocked  work-group tile_n / micro_n; a work-item owns micro_n == vector_width
///                     columns and walks the group's tile_m rows micro_m at a time
///   gemv              tile_n == panel width; work-group (tile_n / micro_n) * k_split; a work-item
///                     owns micro_n == vector_width columns and all tile_m == micro_m rows
/// A default-constructed config is the CPU-device register config for float.
struct gemm_config {
  gemm_family family = gemm_family::register_blocked;  ///< which kernel the parameters are for
  /// @{
  unsigned tile_m = 48, tile_n = 64, tile_k = 1;  ///< rows, columns and depth a work-group tile covers
  /// @}
  /// @{
  unsigned micro_m = 6, micro_n = 16;  ///< rows and columns one work-item computes at a time
  /// @}
  unsigned vector_width = 16;  ///< width of the vectors W is read as: 2, 4, 8 or 16
  unsigned k_split = 1;  ///< gemv only: work-items sharing one column's reduction (a power of two)

  /// A local-memory config (k_split 1).
  static constexpr gemm_config local(unsigned tile_m, unsigned tile_n, unsigned tile_k, unsigned micro_m,
                                     unsigned micro_n, unsigned vector_width) {
    return {gemm_family::local, tile_m, tile_n, tile_k, micro_m, micro_n, vector_width, 1};
  }
  /// A register-blocked config: micro_n == vector_width, tile_k 1.
  static constexpr gemm_config register_blocked(unsigned tile_m, unsigned tile_n, unsigned micro_m,
                                                unsigned vector_width) {
    return {gemm_family::register_blocked, tile_m, tile_n, 1, micro_m, vector_width, vector_width, 1};
  }
  /// A gemv config over `rows` rows (tile_m == micro_m) and one panel (tile_n == panel_width).
  static constexpr gemm_config gemv(unsigned rows, unsigned panel_width, unsigned vector_width, unsigned k_split) {
    return {gemm_family::gemv, rows, panel_width, 1, rows, vector_width, vector_width, k_split};
  }

  /// Output columns one work-group covers: the planner aligns split points to it.
  std::size_t column_granule() const noexcept { return tile_n; }

  /// Work-group shape, dimension 0 along N.
  cl::NDRange work_group() const {
    switch (family) {
      case gemm_family::local: return {tile_n / micro_n, tile_m / micro_m};
      case gemm_family::register_blocked: return {tile_n / micro_n, 1};
      case gemm_family::gemv: return {tile_n / micro_n * k_split, 1};
    }
    return {1, 1};
  }
  std::size_t work_group_size() const { return work_group()[0] * work_group()[1]; }  ///< work-items per work-group

  /// Name of the family's kernel in kernels/gemm.cl.
  const char* kernel_name() const noexcept {
    switch (family) {
      case gemm_family::local: return "coexec_gemm_local";
      case gemm_family::register_blocked: return "coexec_gemm_register";
      case gemm_family::gemv: return "coexec_gemv";
    }
    return "";
  }

  /// The family's -D defines for kernels/gemm.cl (the launcher adds T, PANEL and the epilogue).
  std::string defines() const {
    const auto define = [](const char* name, unsigned value) { return std::string(" -D") + name + "=" + std::to_string(value); };
    return define("COEXEC_GEMM_FAMILY", static_cast<unsigned>(family)) + define("TILE_M", tile_m) +
           define("TILE_N", tile_n) + define("TILE_K", tile_k) + define("MICRO_M", micro_m) +
           define("MICRO_N", micro_n) + define("VW", vector_width) + define("K_SPLIT", k_split);
  }

  /// Local memory the kernel declares, in bytes, for elements of `element_size` bytes.
  std::size_t local_memory(std::size_t element_size) const {
    switch (family) {
      case gemm_family::local: return element_size * tile_k * (tile_m + 1 + tile_n);
      case gemm_family::gemv: return k_split > 1 ? element_size * tile_m * tile_n * k_split : 0;
      case gemm_family::register_blocked: break;
    }
    return 0;
  }

  /// errc::invalid_argument unless the parameters fit together, panels of `panel_width`
  /// elements of `element_size` bytes, and the device `caps`.
  void validate(std::size_t panel_width, std::size_t element_size, const runtime::capabilities& caps) const {
    const std::string what = std::string("gemm_config(") + gpu::to_string(family) + "): ";
    const auto divides = [](unsigned a, std::size_t b) { return a != 0 && b % a == 0; };
    const bool vector_ok = vector_width == 2 || vector_width == 4 || vector_width == 8 || vector_width == 16;
    require(vector_ok && divides(vector_width, panel_width),
            what + "vector_width must be 2, 4, 8 or 16 and divide the panel width " + std::to_string(panel_width));
    require(divides(micro_n, tile_n) && divides(vector_width, micro_n), what + "micro_n must divide tile_n and be a multiple of vector_width");
    require(divides(micro_m, tile_m), what + "micro_m must divide tile_m");
    require(tile_n % panel_width == 0, what + "tile_n must be a multiple of the panel width " + std::to_string(panel_width));
    require(k_split != 0 && (k_split & (k_split - 1)) == 0, what + "k_split must be a power of two");
    if (family != gemm_family::local) require(micro_n == vector_width, what + "micro_n must equal vector_width");
    if (family == gemm_family::local) require(tile_k != 0, what + "tile_k must be positive");
    if (family == gemm_family::gemv)
      require(tile_n == panel_width && micro_m == tile_m, what + "gemv covers one panel (tile_n == panel width) and micro_m == tile_m");
    if (family != gemm_family::gemv) require(k_split == 1, what + "k_split applies to gemv only");
    require(work_group_size() <= caps.max_work_group_size,
            what + "work-group of " + std::to_string(work_group_size()) + " exceeds the device's " + std::to_string(caps.max_work_group_size));
    require(local_memory(element_size) <= caps.local_mem_size,
            what + "needs " + std::to_string(local_memory(element_size)) + " bytes of local memory, the device has " +
                std::to_string(caps.local_mem_size));
  }

  /// All parameters on one line, for logs and error messages.
  std::string to_string() const {
    return std::string(gpu::to_string(family)) + " tile_m=" + std::to_string(tile_m) + " tile_n=" + std::to_string(tile_n) +
           " tile_k=" + std::to_string(tile_k) + " micro_m=" + std::to_string(micro_m) + " micro_n=" + std::to_string(micro_n) +
           " vector_width=" + std::to_string(vector_width) + " k_split=" + std::to_string(k_split);
  }

  friend constexpr bool operator==(const gemm_config&, const gemm_config&) = default;
};

/// One operand: an SVM pointer made through the launcher's context, or a cl::Buffer, plus an
/// element offset (kernels take base + offset, so buffers need no aligned sub-buffers).
template <class T>
struct device_ptr {
  T* svm = nullptr;  ///< SVM pointer, when the operand is SVM
  cl::Buffer buffer;  ///< device buffer, when the operand is a buffer
  std::size_t offset = 0;  ///< elements from the start of `svm` or `buffer`

  device_ptr() = default;
  device_ptr(T* svm_pointer, std::size_t element_offset = 0) : svm(svm_pointer), offset(element_offset) {}  ///< an SVM operand
  /// A buffer operand.
  device_ptr(cl::Buffer device_buffer, std::size_t element_offset = 0)
      : buffer(std::move(device_buffer)), offset(element_offset) {}
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T>>>
  /// Converts a pointer to T into a pointer to const T.
  device_ptr(const device_ptr<U>& other) : svm(other.svm), buffer(other.buffer), offset(other.offset) {}

  bool is_null() const noexcept { return svm == nullptr && buffer() == nullptr; }  ///< neither an SVM pointer nor a buffer (e.g. no bias)
};

/// The operands of one slice: x[m][ldx]; w at the slice's first panel; bias at bias[slice
/// start] (only with a bias); y at y[0][slice start] with row stride ldy.
template <class T>
struct gemm_operands {
  device_ptr<const T> x;  ///< input x, row-major with row stride ldx
  std::size_t ldx = 0;  ///< row stride of x
  device_ptr<const T> w;  ///< packed weights at the slice's first panel
  device_ptr<const T> bias;  ///< bias at the slice's first column (null without bias)
  device_ptr<T> y;  ///< output at y[0][slice start]
  std::size_t ldy = 0;  ///< row stride of y
};

namespace detail {

/// A null operand is set as a null cl_mem, which every OpenCL version accepts (NVIDIA rejects
/// the launch when a null went through clSetKernelArgSVMPointer).
template <class T>
void set_pointer_arg(cl::Kernel& kernel, cl_uint index, const device_ptr<T>& ptr) {
  if (ptr.is_null()) {
    coexec::detail::check(clSetKernelArg(kernel(), index, sizeof(cl_mem), nullptr), "clSetKernelArg(null)");
  } else if (ptr.buffer() != nullptr) {
    coexec::detail::check(kernel.setArg(index, ptr.buffer), "clSetKernelArg(buffer)");
  } else {
    coexec::detail::check(clSetKernelArgSVMPointer(kernel(), index, const_cast<std::remove_const_t<T>*>(ptr.svm)),
                          "clSetKernelArgSVMPointer");
  }
}

/// Sets a kernel's arguments in order: pointers as (pointer, element offset) pairs, sizes as
/// uint, as every coexec kernel declares them. next() is the index of the following argument.
class kernel_args {
 public:
  explicit kernel_args(cl::Kernel& kernel) noexcept : kernel_(kernel) {}

  template <class T>
  kernel_args& pointer(const device_ptr<T>& ptr) {
    set_pointer_arg(kernel_, next_++, ptr);
    return size(ptr.offset);
  }
  kernel_args& size(std::size_t value) {
    coexec::detail::check(kernel_.setArg(next_++, static_cast<cl_uint>(value)), "clSetKernelArg");
    return *this;
  }
  /// The gate's flag (null when open, set as a null operand is) and value.
  kernel_args& gate(const sync::launch_gate& gate) {
    set_pointer_arg(kernel_, next_++, device_ptr<std::uint32_t>(gate.open() ? nullptr : gate.flag->address()));
    return size(gate.value);
  }
  cl_uint next() const noexcept { return next_; }

 private:
  cl::Kernel& kernel_;
  cl_uint next_ = 0;
};

/// errc::invalid_argument unless `ptr` holds `count` elements from its offset, all addressable
/// by the kernels' 32-bit indices; `name` says which operand of which kernel, e.g. "gemm: x".
template <class T>
void require_extent(const runtime::context& ctx, const device_ptr<T>& ptr, std::size_t count, const char* name) {
  require(!ptr.is_null(), std::string(name) + " is null");
  require(ptr.offset + count <= UINT32_MAX, std::string(name) + " exceeds 2^32 elements");
  const std::size_t bytes = count * sizeof(T);
  if (ptr.buffer() != nullptr) {
    require(ptr.buffer.template getInfo<CL_MEM_CONTEXT>()() == ctx.cl_context()(),
            std::string(name) + " is a buffer of another context");
    const std::size_t size = ptr.buffer.template getInfo<CL_MEM_SIZE>();
    require((ptr.offset * sizeof(T)) + bytes <= size,
            std::string(name) + " needs " + std::to_string(bytes) + " bytes from element " +
                std::to_string(ptr.offset) + " of a " + std::to_string(size) + "-byte buffer");
  } else {
    require(ctx.owns_svm(ptr.svm + ptr.offset, bytes),
            std::string(name) + " is not " + std::to_string(bytes) + " bytes of SVM allocated through this context");
  }
}

/// errc::unsupported for a closed gate on a device without SVM atomics: its kernels could not
/// see the flag, and would run before their input is ready.
inline void require_gate_support(const runtime::context& ctx, const sync::launch_gate& gate, const char* op) {
  if (!gate.open() && !ctx.caps().svm_flags())
    throw error(errc::unsupported, std::string(op) + ": a gated launch needs fine-grained SVM atomics, which '" + ctx.caps().name + "' lacks");
}

/// Enqueues `kernel` over `global` / `local` on the context's queue and flushes; returns the launch's event.
inline cl::Event launch(const runtime::context& ctx, const cl::Kernel& kernel, const cl::NDRange& global,
                        const cl::NDRange& local, const char* what) {
  cl::Event event;
  coexec::detail::check(fault_injected(fault::enqueue)
                            ? CL_OUT_OF_RESOURCES
                            : ctx.queue().enqueueNDRangeKernel(kernel, cl::NullRange, global, local, nullptr, &event),
                        what);
  coexec::detail::check(ctx.queue().flush(), "clFlush");
  return event;
}

}  // namespace detail

/// Launches one kernel family on one context. Building happens in the constructor (programs
/// are cached by the context). A launcher's kernel holds argument state: enqueue from one
/// thread at a time, or give each thread its own launcher.
template <class T>
class gemm_launcher {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm_launcher supports float and double");

 public:
  static constexpr std::size_t panel_width = memory::panel_width<T>;  ///< columns per packed weight panel

  /// Validates `config` for the device and builds its kernel with `act` and, if `has_bias`, the bias
  /// fused in; errc::invalid_argument for a config that does not fit, errc::unsupported for double
  /// without fp64.
  gemm_launcher(const runtime::context& ctx, gemm_config config, activation act, bool has_bias)
      : context_(ctx), config_(config), has_bias_(has_bias) {
    if constexpr (std::is_same_v<T, double>)
      if (!ctx.caps().fp64) throw error(errc::unsupported, "device '" + ctx.caps().name + "' has no fp64");
    config_.validate(panel_width, sizeof(T), ctx.caps());
    const std::string options = std::string("-DT=") + (std::is_same_v<T, float> ? "float" : "double") +
                                " -DPANEL=" + std::to_string(panel_width) + " -DCOEXEC_ACT=" + std::to_string(kernel_code(act)) +
                                " -DCOEXEC_HAS_BIAS=" + (has_bias ? "1" : "0") + config_.defines();
    kernel_ = ctx.kernel(source(), config_.kernel_name(), options);
  }

  /// sync.cl + activation.cl + gemm.cl, the program every family is built from.
  static const std::string& source() {
    static const std::string joined = kernels::sync() + kernels::activation() + kernels::gemm();
    return joined;
  }

  const gemm_config& config() const noexcept { return config_; }  ///< the kernel family and tiles in use

  /// Enqueues `slice` (m rows, n_count columns, k) behind `gate` and flushes; wait with
  /// `done.wait(event)`. An empty slice (m or n_count zero) launches nothing and binds nothing:
  /// it returns a user event already set complete, so `done.wait` returns at once in either
  /// completion mode.
  cl::Event enqueue(const gemm_operands<T>& ops, gemm_shape slice, sync::completion& done, const sync::launch_gate& gate = {}) {
    if (slice.m == 0 || slice.n == 0) return completed_event();
    const std::size_t panels = (slice.n + panel_width - 1) / panel_width;
    require(slice.k > 0, "gemm: k must be positive");
    require(ops.ldx >= slice.k, "gemm: ldx (" + std::to_string(ops.ldx) + ") < k (" + std::to_string(slice.k) + ")");
    require(ops.ldy >= slice.n, "gemm: ldy (" + std::to_string(ops.ldy) + ") < n_count (" + std::to_string(slice.n) + ")");
    require(has_bias_ != ops.bias.is_null(), has_bias_ ? "gemm: the launcher adds a bias but none was given"
                                                       : "gemm: a bias was given to a launcher built without one");
    detail::require_extent(context_, ops.x, (slice.m - 1) * ops.ldx + slice.k, "gemm: x");
    detail::require_extent(context_, ops.w, panels * panel_width * slice.k, "gemm: w");
    detail::require_extent(context_, ops.y, (slice.m - 1) * ops.ldy + slice.n, "gemm: y");
    if (has_bias_) detail::require_extent(context_, ops.bias, slice.n, "gemm: bias");
    detail::require_gate_support(context_, gate, "gemm");

    detail::kernel_args args(kernel_);
    args.pointer(ops.x).size(ops.ldx).pointer(ops.w).pointer(ops.bias).pointer(ops.y).size(ops.ldy);
    args.size(slice.m).size(slice.n).size(slice.k).gate(gate);
    done.bind(kernel_, args.next());

    const cl::NDRange local = config_.work_group();
    const cl::NDRange global((slice.n + config_.tile_n - 1) / config_.tile_n * local[0],
                             (slice.m + config_.tile_m - 1) / config_.tile_m * local[1]);
    return detail::launch(context_, kernel_, global, local, "clEnqueueNDRangeKernel(gemm)");
  }

 private:
  cl::Event completed_event() const {
    cl_int status = CL_SUCCESS;
    cl::UserEvent event(context_.cl_context(), &status);
    coexec::detail::check(status, "clCreateUserEvent");
    coexec::detail::check(event.setStatus(CL_COMPLETE), "clSetUserEventStatus");
    return event;
  }

  runtime::context context_;
  gemm_config config_;
  bool has_bias_;
  cl::Kernel kernel_;
};

// --- Buffer staging for devices without fine-grained SVM (discrete GPUs): the weights of the
// device's slice live in a device buffer, x is copied in, and y comes back into the strided
// host output. All three are non-blocking: keep host memory alive until the event completed.

/// A device buffer of `count` elements of T.
template <class T>
cl::Buffer make_buffer(const runtime::context& ctx, std::size_t count, cl_mem_flags flags = CL_MEM_READ_WRITE) {
  cl_int status = CL_SUCCESS;
  cl::Buffer buffer(ctx.cl_context(), flags, std::max<std::size_t>(count, 1) * sizeof(T), nullptr, &status);
  coexec::detail::check(status, "clCreateBuffer");
  return buffer;
}

/// Copies `rows` x `cols` host elements (row stride `ld`) into `buffer` from element `offset`,
/// packed (row stride `cols`).
template <class T>
cl::Event write_rows(const runtime::context& ctx, const cl::Buffer& buffer, std::size_t offset, const T* host,
                     std::size_t rows, std::size_t cols, std::size_t ld) {
  require(ld >= cols, "write_rows: ld < cols");
  const std::array<std::size_t, 3> device_origin{offset * sizeof(T), 0, 0}, host_origin{0, 0, 0},
      region{cols * sizeof(T), rows, 1};
  cl::Event event;
  coexec::detail::check(ctx.queue().enqueueWriteBufferRect(buffer, CL_FALSE, device_origin, host_origin, region,
                                                           cols * sizeof(T), 0, ld * sizeof(T), 0, host, nullptr, &event),
                        "clEnqueueWriteBufferRect");
  return event;
}

/// Copies part of a host tensor to the same positions in `buffer`, which has the tensor's layout:
/// `blocks` blocks `block_stride` elements apart, each of `runs` runs `run_stride` apart, each
/// run `run` elements, the first at element `offset` (e.g. rows [r0, r1) of some channels' planes
/// of every image of an NCHW tensor). Nothing to copy: the null event.
template <class T>
cl::Event write_block(const runtime::context& ctx, const cl::Buffer& buffer, const T* host, std::size_t offset, std::size_t run,
                      std::size_t runs, std::size_t run_stride, std::size_t blocks, std::size_t block_stride) {
  require(run_stride >= run && block_stride >= runs * run_stride && block_stride % run_stride == 0,
          "write_block: runs overlap, or blocks are not a whole number of run strides");
  if (run == 0 || runs == 0 || blocks == 0) return {};
  const std::array<std::size_t, 3> origin{offset * sizeof(T), 0, 0}, region{run * sizeof(T), runs, blocks};
  cl::Event event;
  coexec::detail::check(ctx.queue().enqueueWriteBufferRect(buffer, CL_FALSE, origin, origin, region, run_stride * sizeof(T),
                                                           block_stride * sizeof(T), run_stride * sizeof(T),
                                                           block_stride * sizeof(T), host, nullptr, &event),
                        "clEnqueueWriteBufferRect");
  return event;
}

/// Copies `rows` x `cols` packed elements of `buffer` from element `offset` into host memory
/// with row stride `ld` (e.g. the device's column slice of y into the shared output).
template <class T>
cl::Event read_rows(const runtime::context& ctx, const cl::Buffer& buffer, std::size_t offset, T* host,
                    std::size_t rows, std::size_t cols, std::size_t ld) {
  require(ld >= cols, "read_rows: ld < cols");
  const std::array<std::size_t, 3> device_origin{offset * sizeof(T), 0, 0}, host_origin{0, 0, 0},
      region{cols * sizeof(T), rows, 1};
  cl::Event event;
  coexec::detail::check(ctx.queue().enqueueReadBufferRect(buffer, CL_FALSE, device_origin, host_origin, region,
                                                          cols * sizeof(T), 0, ld * sizeof(T), 0, host, nullptr, &event),
                        "clEnqueueReadBufferRect");
  return event;
}

}  // namespace coexec::gpu
