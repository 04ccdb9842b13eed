#pragma once
// coexec::ops::attention — multi-head scaled dot-product self-attention co-executed along heads:
// y[S, D] = per head softmax(Q K^T / sqrt(dh)) V, from one fused QKV tensor {S, 3D} (row r holds
// Q | K | V, as a fused QKV projection writes it). The CPU computes heads [0, split) on a thread
// pool while the device computes [split, H), both straight into the same output; nothing is
// copied or merged afterwards. Heads are independent, so every split point is aligned.
//
//   Planner   plan::grid_search<cpu::attention_shape> (the oracle: times every split once per
//             shape; a head count has at most a few dozen) or any type with
//             size_t choose(const cpu::attention_shape&, Op&); one with observe() also sees
//             every planned run (ops::show_planner)
//
// Memory as in ops::linear: on fine-grained SVM devices qkv and y are SVM allocations of the
// operator's context, read and written in place; elsewhere (discrete GPUs) the device's heads'
// Q, K and V columns are copied in and its output columns copied back, and the completion is
// the copy-back's event.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "coexec/cpu/attention.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/gpu/attention.hpp"
#include "coexec/ops/co_execute.hpp"
#include "coexec/plan/grid_search.hpp"
#include "coexec/sync/completion.hpp"

namespace coexec::ops {

/// How an ops::attention runs: completion mode, wait timeout, device failures, memory path.
struct attention_options {
  /// svm_counter where the device supports it; event_polling forces the fallback.
  sync::completion::mode completion = sync::completion::mode::svm_counter;
  /// Longest a run waits for the device before errc::timeout (see linear_options::timeout).
  std::chrono::nanoseconds timeout = sync::default_timeout;
  /// Raise a failed device part, or recompute its heads on the CPU (see device_failure).
  device_failure on_device_failure = device_failure::raise;
  /// Share qkv and y in fine-grained SVM where the device has it. false stages them on any device.
  bool shared_memory = true;
  /// The device kernel and its work-group shape; by default the device's (attention_config::for_device).
  std::optional<gpu::attention_config> kernel = std::nullopt;
};

template <class T, class Planner = plan::grid_search<cpu::attention_shape>>
/// Multi-head self-attention co-executed on the CPU and the device, split along heads as the
/// Planner chooses (see the file comment). Thread safety as ops::linear: one thread at a time.
class attention {
 public:
  using value_type = T;  ///< the element type of qkv and y
  static constexpr const char* split_unit = "heads ";  ///< how reports name the split's extent

  /// Attention over `heads` heads of `head_dim` features each (D = heads * head_dim). The device
  /// kernel is built at the first device part, so that a build failure is a device failure
  /// (device_failure::run_on_cpu recovers from it).
  attention(const runtime::context& ctx, cpu::thread_pool& pool, std::size_t heads, std::size_t head_dim, attention_options options = {})
      : context_(ctx), pool_(&pool), heads_(heads), head_dim_(head_dim), options_(options),
        shared_((validate(heads, head_dim, options), options.shared_memory && ctx.caps().svm_fine)),
        completion_(ctx, shared_ ? options.completion : sync::completion::mode::event_polling),
        device_(ctx, options.on_device_failure, "attention") {}

  std::size_t columns() const noexcept { return heads_; }  ///< H, the extent split points cut
  std::size_t head_dim() const noexcept { return head_dim_; }  ///< dh, features per head
  std::size_t width() const noexcept { return heads_ * head_dim_; }  ///< D, the output's row length
  cpu::attention_shape shape(std::size_t tokens) const noexcept { return {tokens, heads_, head_dim_}; }  ///< a call's shape
  std::size_t split_granule() const noexcept { return 1; }  ///< every head count is a split point
  std::string kind() const { return "attention " + std::to_string(heads_) + "x" + std::to_string(head_dim_); }  ///< for reports
  Planner& planner() noexcept { return planner_; }  ///< the planner that chooses each shape's split
  const runtime::context& context() const noexcept { return context_; }  ///< the context of the device side
  sync::completion::mode completion_mode() const noexcept { return completion_.kind(); }  ///< how the host learns that the device's part finished
  bool shared_memory() const noexcept { return shared_; }  ///< true when qkv and y are shared with the device in fine-grained SVM

  /// Runs with the planner's split for this shape (the first call of a shape may plan).
  void operator()(const T* qkv, std::size_t tokens, T* y) {
    validate_io(qkv, tokens, y);
    bound_call call{*this, qkv, tokens, y};
    run(qkv, tokens, y, planner_.choose(shape(tokens), call));
    show_planner(planner_, shape(tokens), last_run_);
  }

  /// Runs with an explicit split: the CPU computes heads [0, split), the device [split, H).
  void operator()(const T* qkv, std::size_t tokens, T* y, std::size_t split) {
    validate_io(qkv, tokens, y);
    validate_split(split);
    run(qkv, tokens, y, split);
  }

  /// @name The parts of a run, for callers that schedule them themselves (as ops::linear's)
  /// @{
  /// Enqueues and flushes the device's heads [split, H), held back until `gate` opens; the null
  /// event when the device has no heads. A closed gate needs shared_memory().
  cl::Event enqueue_device_part(const T* qkv, std::size_t tokens, T* y, std::size_t split, const sync::launch_gate& gate = {}) {
    validate_io(qkv, tokens, y);
    validate_split(split);
    require(gate.open() || shared_, "attention: a gated device part needs tensors shared with the device (shared_memory())");
    device_.require_settled();
    return split < heads_ ? enqueue_device(qkv, tokens, y, split, gate) : cl::Event();
  }
  /// Computes the CPU's heads [0, split) on the pool; returns when they are written.
  void run_cpu_part(const T* qkv, std::size_t tokens, T* y, std::size_t split) {
    validate_io(qkv, tokens, y);
    validate_split(split);
    cpu::attention(*pool_, qkv, shape(tokens), y, 0, split);
  }
  /// Waits for a device part enqueued last by enqueue_device_part() (`last` is its event).
  void wait_device_part(const cl::Event& last) const { completion_.wait(last, options_.timeout); }
  /// @}

  /// What the last run measured.
  const run_record& last_run() const noexcept { return last_run_; }

 private:
  // What a planner times: this operator on one call's buffers at a given split.
  struct bound_call {
    attention& op;
    const T* qkv;
    std::size_t tokens;
    T* y;
    std::size_t columns() const { return op.columns(); }
    std::size_t split_granule() const { return op.split_granule(); }
    void run(std::size_t split) { op.run(qkv, tokens, y, split); }
    const run_record& last_record() const { return op.last_run(); }
  };

  static int validate(std::size_t heads, std::size_t head_dim, const attention_options& options) {
    require(heads > 0 && head_dim > 0, "attention: heads and head_dim must be positive (got " + std::to_string(heads) + " and " +
                                           std::to_string(head_dim) + ")");
    require(options.timeout.count() > 0, "attention: options.timeout must be positive");
    return 0;
  }

  void validate_io(const T* qkv, std::size_t tokens, const T* y) const {
    require(tokens > 0, "attention: the token count must be positive");
    require(qkv != nullptr, "attention: qkv is null");
    require(y != nullptr, "attention: y is null");
    require(reinterpret_cast<std::uintptr_t>(qkv) % alignof(T) == 0, "attention: qkv is not aligned to its element type");
    require(reinterpret_cast<std::uintptr_t>(y) % alignof(T) == 0, "attention: y is not aligned to its element type");
    if (shared_) {
      require(context_.owns_svm(qkv, tokens * 3 * width() * sizeof(T)),
              "attention: qkv must be an SVM allocation of this operator's context holding S*3D = " + std::to_string(tokens * 3 * width()) +
                  " values");
      require(context_.owns_svm(y, tokens * width() * sizeof(T)),
              "attention: y must be an SVM allocation of this operator's context holding S*D = " + std::to_string(tokens * width()) +
                  " values");
    }
  }

  void validate_split(std::size_t split) const {
    require(split <= heads_, "attention: split " + std::to_string(split) + " exceeds the " + std::to_string(heads_) + " heads");
  }

  void run(const T* qkv, std::size_t tokens, T* y, std::size_t split) {
    const auto awake = keep_awake_for_device(*pool_, context_);
    last_run_ = co_execute(
        completion_, device_, options_.timeout, split < heads_, [&] { return enqueue_device(qkv, tokens, y, split); },
        [&] { cpu::attention(*pool_, qkv, shape(tokens), y, 0, split); },
        [&] { cpu::attention(*pool_, qkv, shape(tokens), y, split, heads_); });
    last_run_.split = split;
  }

  cl::Event enqueue_device(const T* qkv, std::size_t tokens, T* y, std::size_t split, const sync::launch_gate& gate = {}) {
    const std::size_t count = heads_ - split, d = width();
    if (!launcher_) launcher_.emplace(context_, shape(tokens), options_.kernel);
    if (shared_)
      return launcher_->enqueue(gpu::device_ptr<const T>(qkv), gpu::device_ptr<T>(y, split * head_dim_), d, tokens, split, count,
                               completion_, gate);
    // Discrete device: the device's heads' columns of Q, K and V in (the stage keeps the
    // tensor's layout), its output columns computed compactly, then copied into place.
    if (qkv_stage_capacity_ < tokens * 3 * d) {
      qkv_stage_ = gpu::make_buffer<T>(context_, tokens * 3 * d, CL_MEM_READ_ONLY);
      y_stage_ = gpu::make_buffer<T>(context_, tokens * d, CL_MEM_WRITE_ONLY);
      qkv_stage_capacity_ = tokens * 3 * d;
    }
    for (std::size_t part = 0; part < 3; ++part)
      gpu::write_block(context_, qkv_stage_, qkv, part * d + split * head_dim_, count * head_dim_, tokens, 3 * d, 1, tokens * 3 * d);
    launcher_->enqueue(gpu::device_ptr<const T>(qkv_stage_), gpu::device_ptr<T>(y_stage_), count * head_dim_, tokens, split, count,
                      completion_);
    cl::Event copied = gpu::read_rows(context_, y_stage_, 0, y + split * head_dim_, tokens, count * head_dim_, d);
    detail::check(context_.queue().flush(), "clFlush");
    return copied;
  }

  runtime::context context_;
  cpu::thread_pool* pool_;
  std::size_t heads_, head_dim_;
  attention_options options_;
  bool shared_;
  sync::completion completion_;
  device_guard device_;
  std::optional<gpu::attention_launcher<T>> launcher_;
  cl::Buffer qkv_stage_, y_stage_;
  std::size_t qkv_stage_capacity_ = 0;
  Planner planner_;
  run_record last_run_;
};

}  // namespace coexec::ops

namespace coexec {
using ops::attention;
using ops::attention_options;
}  // namespace coexec
