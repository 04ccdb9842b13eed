#pragma once
// coexec::ops::linear — y[M,N] = act(x[M,K] * W[N,K]^T + bias), co-executed: the CPU computes
// output channels [0, split) on a thread pool while the device computes [split, N), both
// straight into the same output. Nothing is copied or merged afterwards.
//
//   CpuKernel  cpu::packed_gemm (default, coexec's own) or cpu::cblas_gemm (any CBLAS), or yours:
//              void operator()(cpu::thread_pool&, const cpu::gemm_args<T>&, size_t n_begin, size_t n_end)
//   Planner    plan::grid_search<gemm_shape> (the oracle) or any type with
//              size_t choose(const gemm_shape&, Op&) returning the split for a shape; one with
//              observe() also sees every planned run (ops::show_planner)
//
// Memory: on fine-grained SVM devices x and y must be SVM allocations of the operator's context
// (svm_vector / svm_allocator); the device reads and writes them in place. Elsewhere (discrete
// GPUs) x and y are ordinary host memory: the device's rows of x are copied in and its columns
// of y copied back, and the completion is the copy-back's event.
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coexec/activation.hpp"
#include "coexec/cpu/gemm.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/gpu/gemm.hpp"
#include "coexec/gpu/tuning.hpp"
#include "coexec/ops/co_execute.hpp"
#include "coexec/ops/split_weights.hpp"
#include "coexec/plan/grid_search.hpp"
#include "coexec/sync/completion.hpp"

namespace coexec::ops {

/// How an ops::linear runs: fused activation, completion mode, wait timeout, device failures,
/// memory path, tuner.
struct linear_options {
  activation act = activation::none;  ///< fused into the epilogue on both sides
  /// svm_counter where the device supports it; event_polling forces the fallback.
  sync::completion::mode completion = sync::completion::mode::svm_counter;
  /// Longest a run waits for the device before errc::timeout; a failed device part then gets as
  /// long again to end (see device_guard).
  std::chrono::nanoseconds timeout = sync::default_timeout;
  /// Raise a failed device part, or recompute it on the CPU (see device_failure, device_guard).
  /// run_on_cpu on the staged path keeps all packed weights on the host as well.
  device_failure on_device_failure = device_failure::raise;
  /// Share weights, x and y in fine-grained SVM where the device has it. false takes the
  /// discrete-GPU path (device-resident weight slice, x and y staged) on any device.
  bool shared_memory = true;
  /// Picks the device kernel per shape class by timing candidates (remembered in memory and on
  /// disk); null uses the built-in defaults per device family. Must outlive the operator.
  gpu::tuner* tuner = nullptr;
};

template <class T, class CpuKernel = cpu::packed_gemm, class Planner = plan::grid_search<gemm_shape>>
/// A dense layer y = act(x W^T + bias) co-executed on the CPU and the device, split along
/// output channels as the Planner chooses; CpuKernel computes the CPU's part (see the file comment).
///
/// Thread safety: one operator serves one thread at a time (each call updates its completion
/// epoch, staging buffers, planner and last_run()). Give each thread its own operator; those may
/// share a context and a thread pool (a shared pool runs their CPU parts one after another).
class linear {
 public:
  using value_type = T;  ///< the element type of x, y and the weights
  static constexpr std::size_t panel_width = memory::panel_width<T>;  ///< columns per packed weight panel, the split granule
  static constexpr const char* split_unit = "ch ";  ///< how reports name the split's extent

  /// `weights` holds W[N,K] row-major, `bias` N values or nothing. Both are copied (packed) once.
  linear(const runtime::context& ctx, cpu::thread_pool& pool, std::size_t n, std::size_t k, std::span<const T> weights,
         std::span<const T> bias = {}, linear_options options = {})
      : context_(ctx), pool_(&pool), n_(n), k_(k), options_(options),
        // Staged (non-SVM) runs end with a copy back that only its event reports.
        completion_(ctx, options.shared_memory && ctx.caps().svm_fine ? options.completion
                                                                      : sync::completion::mode::event_polling),
        device_(ctx, options.on_device_failure, "linear"),
        weights_((validate(n, k, weights, bias, options), ctx), weights.data(), n, k, options.shared_memory) {
    if constexpr (CpuKernel::needs_raw_weights) raw_weights_.assign(weights.begin(), weights.end());
    if (options.on_device_failure == device_failure::run_on_cpu && !weights_.shared()) {  // the CPU may have to do every column
      fallback_panels_.resize(memory::packed_size<T>(n, k));
      memory::pack_panels(weights.data(), n, k, fallback_panels_.data());
    }
    if (!bias.empty()) {
      host_bias_.assign(bias.begin(), bias.end());
      if (weights_.shared()) {
        shared_bias_.emplace(ctx, n);
        std::copy(bias.begin(), bias.end(), shared_bias_->data());
      } else {
        device_bias_ = gpu::make_buffer<T>(ctx, n, CL_MEM_READ_ONLY);
        detail::check(ctx.queue().enqueueWriteBuffer(device_bias_, CL_TRUE, 0, n * sizeof(T), bias.data()), "clEnqueueWriteBuffer(bias)");
      }
    }
  }

  std::size_t columns() const noexcept { return n_; }  ///< N, the output channels
  std::size_t depth() const noexcept { return k_; }  ///< K, the input features
  std::string kind() const { return "linear " + std::to_string(k_) + "->" + std::to_string(n_); }  ///< for reports
  gemm_shape shape(std::size_t m) const noexcept { return {m, n_, k_}; }  ///< the problem shape of a call with `m` rows
  /// Split points are multiples of this (both sides read whole weight panels).
  std::size_t split_granule() const noexcept { return panel_width; }
  Planner& planner() noexcept { return planner_; }  ///< the planner that chooses each shape's split
  const runtime::context& context() const noexcept { return context_; }  ///< the context of the device side
  sync::completion::mode completion_mode() const noexcept { return completion_.kind(); }  ///< how the host learns that the device's part finished
  /// True when x, y and the weights are shared with the device in fine-grained SVM.
  bool shared_memory() const noexcept { return weights_.shared(); }

  /// Runs with the planner's split for this shape (the first call of a shape may plan).
  void operator()(const T* x, std::size_t m, T* y) {
    validate_io(x, m, y);
    bound_call call{*this, x, m, y};
    run(x, m, y, planner_.choose(shape(m), call));
    show_planner(planner_, shape(m), last_run_);
  }

  /// Runs with an explicit split: the CPU computes [0, split), the device [split, N).
  /// `split` must be a multiple of split_granule() or N.
  void operator()(const T* x, std::size_t m, T* y, std::size_t split) {
    validate_io(x, m, y);
    validate_split(split);
    run(x, m, y, split);
  }

  /// @name The parts of a run, for callers that schedule them themselves
  /// operator() is enqueue_device_part(), run_cpu_part(), wait_device_part() in a row. A pipeline
  /// enqueues a layer's device part early instead, behind a gate that the host opens once the
  /// input is ready, and waits for it later. No timings are recorded (last_run() keeps the last
  /// operator() call).
  /// @{
  /// Enqueues and flushes the device's columns [split, N), held back until `gate` opens; returns
  /// the event of its last command, or a null event when the device has no columns. A closed
  /// gate needs shared_memory(): a staging copy would read x before the gate opens.
  cl::Event enqueue_device_part(const T* x, std::size_t m, T* y, std::size_t split, const sync::launch_gate& gate = {}) {
    validate_io(x, m, y);
    validate_split(split);
    require(gate.open() || shared_memory(), "linear: a gated device part needs tensors shared with the device (shared_memory())");
    device_.require_settled();
    weights_.cover(split);
    return split < n_ ? enqueue_device(x, m, y, split, gate) : cl::Event();
  }
  /// Computes the CPU's columns [0, split) on the pool; returns when they are written.
  void run_cpu_part(const T* x, std::size_t m, T* y, std::size_t split) {
    validate_io(x, m, y);
    validate_split(split);
    weights_.cover(split);
    compute_on_cpu(x, m, y, 0, split, weights_.host_panels());
  }
  /// Waits for a device part enqueued last by enqueue_device_part() (`last` is its event).
  void wait_device_part(const cl::Event& last) const { completion_.wait(last, options_.timeout); }
  /// @}

  /// What the last run measured.
  const run_record& last_run() const noexcept { return last_run_; }

  /// Bytes of weights the operator holds (both sides), and that relative to the raw W.
  std::size_t weight_bytes() const { return weights_.bytes() + (raw_weights_.size() + fallback_panels_.size()) * sizeof(T); }
  double weight_bytes_ratio() const { return static_cast<double>(weight_bytes()) / static_cast<double>(n_ * k_ * sizeof(T)); }  ///< weight_bytes() relative to the raw W[N,K]

 private:
  // What a planner times: this operator on one call's buffers at a given split.
  struct bound_call {
    linear& op;
    const T* x;
    std::size_t m;
    T* y;
    std::size_t columns() const { return op.n_; }
    std::size_t split_granule() const { return op.split_granule(); }
    // Splits that leave the device whole tiles of its kernel's work-groups, where N holds whole
    // tiles: a part tile costs the device a whole one (pocl-2, 128x768x768: 336 to 384 device
    // columns all took 440 µs, 320 took 370). Predicting planners step by it; grid_search does not.
    std::size_t tile_granule() const {
      const std::size_t tile = op.device_config(m).column_granule();
      return tile % panel_width == 0 && op.n_ % tile == 0 ? tile : op.split_granule();
    }
    void run(std::size_t split) { op.run(x, m, y, split); }
    const run_record& last_record() const { return op.last_run(); }
    // How each side would run the call, for planners that predict instead of timing.
    std::size_t element_size() const { return sizeof(T); }
    std::size_t cpu_threads() const { return op.pool_->size(); }
    gpu::gemm_config device_config() const { return op.device_config(m); }
    const runtime::context& context() const { return op.context_; }
    // Whether moving the split moves weight panels between the sides (each holds its own slice:
    // ops::split_weights); planners that explore other splits ask.
    bool split_moves_weights() const { return !op.shared_memory(); }
  };

  static int validate(std::size_t n, std::size_t k, std::span<const T> weights, std::span<const T> bias, const linear_options& options) {
    require(n > 0 && k > 0, "linear: N and K must be positive (got N = " + std::to_string(n) + ", K = " + std::to_string(k) + ")");
    require(weights.data() != nullptr && weights.size() == n * k,
            "linear: weights must hold N*K = " + std::to_string(n * k) + " values, got " + std::to_string(weights.size()));
    require(bias.empty() || bias.size() == n, "linear: bias must hold N = " + std::to_string(n) + " values, got " + std::to_string(bias.size()));
    require(options.timeout.count() > 0, "linear: options.timeout must be positive");
    return 0;
  }

  void validate_io(const T* x, std::size_t m, const T* y) const {
    require(m > 0, "linear: M must be positive");
    require(x != nullptr, "linear: x is null");
    require(y != nullptr, "linear: y is null");
    require(reinterpret_cast<std::uintptr_t>(x) % alignof(T) == 0, "linear: x is not aligned to its element type");
    require(reinterpret_cast<std::uintptr_t>(y) % alignof(T) == 0, "linear: y is not aligned to its element type");
    if (weights_.shared()) {
      require(context_.owns_svm(x, m * k_ * sizeof(T)),
              "linear: x must be an SVM allocation of this operator's context holding M*K = " + std::to_string(m * k_) + " values");
      require(context_.owns_svm(y, m * n_ * sizeof(T)),
              "linear: y must be an SVM allocation of this operator's context holding M*N = " + std::to_string(m * n_) + " values");
    }
  }

  void validate_split(std::size_t split) const {
    require(split <= n_ && (split % panel_width == 0 || split == n_),
            "linear: split " + std::to_string(split) + " must be a multiple of " + std::to_string(panel_width) + " or N = " +
                std::to_string(n_));
  }

  void run(const T* x, std::size_t m, T* y, std::size_t split) {
    device_.require_settled();  // before cover(), which waits on the queue a lost device part may hold
    weights_.cover(split);
    const auto awake = keep_awake_for_device(*pool_, context_);
    last_run_ = co_execute(
        completion_, device_, options_.timeout, split < n_, [&] { return enqueue_device(x, m, y, split); },
        [&] { compute_on_cpu(x, m, y, 0, split, weights_.host_panels()); },
        [&] { compute_on_cpu(x, m, y, split, n_, weights_.shared() ? weights_.host_panels() : fallback_panels_.data()); });
    last_run_.split = split;
  }

  // Columns [begin, end) of y on the CPU, from packed weights holding at least panels [0, ceil(end / NR)).
  void compute_on_cpu(const T* x, std::size_t m, T* y, std::size_t begin, std::size_t end, const T* panels) {
    cpu::gemm_args<T> args;
    args.x = x;
    args.ldx = k_;
    args.panels = panels;
    args.weights = raw_weights_.empty() ? nullptr : raw_weights_.data();
    args.bias = host_bias_.empty() ? nullptr : host_bias_.data();
    args.y = y;
    args.ldy = n_;
    args.shape = shape(m);
    args.act = options_.act;
    CpuKernel{}(*pool_, args, begin, end);
  }

  cl::Event enqueue_device(const T* x, std::size_t m, T* y, std::size_t split, const sync::launch_gate& gate = {}) {
    const std::size_t columns = n_ - split;
    gpu::gemm_launcher<T>& launcher = launcher_for(m);
    gpu::gemm_operands<T> ops;
    ops.w = weights_.device_panels(split);
    if (weights_.shared()) {
      ops.x = gpu::device_ptr<const T>(x);
      ops.ldx = k_;
      if (shared_bias_) ops.bias = gpu::device_ptr<const T>(shared_bias_->data(), split);
      ops.y = gpu::device_ptr<T>(y, split);
      ops.ldy = n_;
      return launcher.enqueue(ops, {m, columns, k_}, completion_, gate);
    }
    // Discrete device: x in, the slice of y computed compactly, then copied into place.
    ensure_staging(m, columns);
    gpu::write_rows(context_, x_stage_, 0, x, m, k_, k_);
    ops.x = gpu::device_ptr<const T>(x_stage_);
    ops.ldx = k_;
    if (device_bias_() != nullptr) ops.bias = gpu::device_ptr<const T>(device_bias_, split);
    ops.y = gpu::device_ptr<T>(y_stage_);
    ops.ldy = columns;
    launcher.enqueue(ops, {m, columns, k_}, completion_);
    cl::Event copied = gpu::read_rows(context_, y_stage_, 0, y + split, m, columns, n_);
    detail::check(context_.queue().flush(), "clFlush");
    return copied;
  }

  void ensure_staging(std::size_t m, std::size_t columns) {
    if (x_stage_capacity_ < m * k_) {
      x_stage_ = gpu::make_buffer<T>(context_, m * k_, CL_MEM_READ_ONLY);
      x_stage_capacity_ = m * k_;
    }
    if (y_stage_capacity_ < m * columns) {
      y_stage_ = gpu::make_buffer<T>(context_, m * n_, CL_MEM_WRITE_ONLY);
      y_stage_capacity_ = m * n_;
    }
  }

  gpu::gemm_config device_config(std::size_t m) const {
    return options_.tuner ? options_.tuner->config<T>(context_, gpu::classify(m)) : gpu::default_config<T>(context_.caps(), gemm_shape{m, n_, k_});
  }

  gpu::gemm_launcher<T>& launcher_for(std::size_t m) {
    const gpu::gemm_config config = device_config(m);
    auto found = launchers_.find(config);
    if (found == launchers_.end())
      found = launchers_.emplace(config, gpu::gemm_launcher<T>(context_, config, options_.act, !host_bias_.empty())).first;
    return found->second;
  }

  struct config_less {
    bool operator()(const gpu::gemm_config& a, const gpu::gemm_config& b) const { return a.to_string() < b.to_string(); }
  };

  runtime::context context_;
  cpu::thread_pool* pool_;
  std::size_t n_, k_;
  linear_options options_;
  sync::completion completion_;
  device_guard device_;
  split_weights<T> weights_;
  std::vector<T> raw_weights_;  // only for CpuKernels that read W row-major (CBLAS)
  std::vector<T> fallback_panels_;  // all packed panels, for run_on_cpu on the staged path
  std::vector<T> host_bias_;
  std::optional<memory::svm_vector<T>> shared_bias_;
  cl::Buffer device_bias_;
  cl::Buffer x_stage_, y_stage_;
  std::size_t x_stage_capacity_ = 0, y_stage_capacity_ = 0;
  std::map<gpu::gemm_config, gpu::gemm_launcher<T>, config_less> launchers_;
  Planner planner_;
  run_record last_run_;
};

}  // namespace coexec::ops

namespace coexec {
using ops::device_failure;
using ops::linear;
using ops::linear_options;
using ops::run_record;
}  // namespace coexec
