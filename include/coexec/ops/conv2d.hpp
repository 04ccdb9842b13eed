#pragma once
// coexec::ops::conv2d — y = act(conv2d(x, W) + bias) (NCHW, OIHW, torch.nn.functional.conv2d
// semantics: see coexec::conv2d_shape), co-executed. The plan cuts the output along one
// dimension: output channels (the CPU computes [0, split), the device [split, O)) or output rows
// (CPU rows [0, split) of every channel, device the rest: the hybrid dimension for layers with
// few channels). Both sides read the same input and write their part of the same output: no
// halo copies, no merge.
//
//   CpuKernel  cpu::packed_conv (default), or yours:
//              void operator()(cpu::thread_pool&, const cpu::conv_args<T>&, index_range channels, index_range rows)
//   Planner    plan::predicted<conv2d_shape> (default: predicts both dimensions' times from the
//              device's trained models or its roofline, then corrects them online),
//              plan::hybrid_search<conv2d_shape> (the oracle over both dimensions), or any type
//              with split_plan choose(const conv2d_shape&, Op&), or — channels only — any with
//              size_t choose(const conv2d_shape&, Op&) such as plan::grid_search<conv2d_shape>;
//              one with observe() also sees every planned run (ops::show_planner)
//
// Memory: as ops::linear. On fine-grained SVM devices x, y, weights and bias are shared and the
// device works in place. Elsewhere x is copied in whole, the device's part of y is computed
// compactly and copied back with rect copies, and the device holds the weights of the channels
// it has been given (grown when the split moves down).
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "coexec/activation.hpp"
#include "coexec/cpu/conv.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/gpu/conv.hpp"
#include "coexec/gpu/tuning.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/plan/predicted.hpp"
#include "coexec/plan/split_plan.hpp"
#include "coexec/sync/completion.hpp"

namespace coexec::ops {

/// How an ops::conv2d runs: fused activation, completion mode, wait timeout, device failures, memory path.
struct conv2d_options {
  activation act = activation::none;  ///< fused into the epilogue on both sides
  /// svm_counter where the device supports it; event_polling forces the fallback.
  sync::completion::mode completion = sync::completion::mode::svm_counter;
  /// Longest a run waits for the device before errc::timeout; a failed device part then gets as
  /// long again to end (see device_guard).
  std::chrono::nanoseconds timeout = sync::default_timeout;
  /// Raise a failed device part, or recompute it on the CPU (see device_failure, device_guard).
  /// With run_on_cpu a device kernel that does not build leaves the operator CPU-only.
  device_failure on_device_failure = device_failure::raise;
  /// Share weights, x and y in fine-grained SVM where the device has it; false takes the
  /// discrete-GPU (staged) path on any device.
  bool shared_memory = true;
  /// The device kernel; none picks it per device and shape (gpu::default_choice). One that cannot
  /// compute the shape is errc::invalid_argument.
  std::optional<gpu::conv_kernel> device_kernel = std::nullopt;
  /// Without a device_kernel: picks the kernel by timing the candidates on this layer's shape
  /// (remembered in memory and on disk); null takes the launcher's own choice. Must outlive the operator.
  gpu::tuner* tuner = nullptr;
};

/// run_record plus the dimension the split ran along.
struct conv2d_record : run_record {
  plan::split_dimension dimension = plan::split_dimension::channels;  ///< channels or output rows
};

template <class T, class CpuKernel = cpu::packed_conv, class Planner = plan::predicted<conv2d_shape>>
/// A 2-D convolution co-executed on the CPU and the device, split along output channels or output
/// rows as the Planner chooses; CpuKernel computes the CPU's part (see the file comment).
///
/// Thread safety: as ops::linear, one operator serves one thread at a time; operators of several
/// threads may share a context and a thread pool.
class conv2d {
 public:
  using value_type = T;  ///< the element type of x, y and the weights
  using dimension = plan::split_dimension;  ///< what a split cuts: output channels or output rows

  /// `weights` holds W in OIHW order (shape.weight_size() values), `bias` out_channels values or
  /// nothing; both are copied once. Every call runs shape.batch images.
  conv2d(const runtime::context& ctx, cpu::thread_pool& pool, const conv2d_shape& shape, std::span<const T> weights,
         std::span<const T> bias = {}, conv2d_options options = {})
      : context_((validate(shape, weights, bias, options), ctx)), pool_(&pool), shape_(shape), options_(options),
        shared_(options.shared_memory && ctx.caps().svm_fine),
        completion_(ctx, shared_ ? options.completion : sync::completion::mode::event_polling),
        device_(ctx, options.on_device_failure, "conv2d"), launcher_(make_launcher(ctx, shape, options, !bias.empty())) {
    if (shared_) {  // one copy both sides read
      shared_weights_.emplace(ctx, weights.size());
      std::copy(weights.begin(), weights.end(), shared_weights_->data());
      if (!bias.empty()) {
        shared_bias_.emplace(ctx, bias.size());
        std::copy(bias.begin(), bias.end(), shared_bias_->data());
      }
      return;
    }
    host_weights_.assign(weights.begin(), weights.end());
    host_bias_.assign(bias.begin(), bias.end());
    if (!bias.empty()) {
      device_bias_ = gpu::make_buffer<T>(ctx, bias.size(), CL_MEM_READ_ONLY);
      detail::check(ctx.queue().enqueueWriteBuffer(device_bias_, CL_TRUE, 0, bias.size() * sizeof(T), bias.data()),
                    "clEnqueueWriteBuffer(bias)");
    }
  }

  const conv2d_shape& shape() const noexcept { return shape_; }  ///< the convolution this operator computes
  /// Length of the output along `d`: out_channels or output rows.
  std::size_t extent(dimension d) const noexcept { return d == dimension::channels ? shape_.out_channels : shape_.out_height(); }
  /// Split points along `d` are multiples of this (or the extent): channel splits keep the
  /// device's channel blocks whole, row splits may fall anywhere.
  std::size_t split_granule(dimension d) const noexcept {
    return d == dimension::channels ? gpu::conv_launcher<T>::channel_granule : 1;
  }
  Planner& planner() noexcept { return planner_; }  ///< the planner that chooses each call's split
  const runtime::context& context() const noexcept { return context_; }  ///< the context of the device side
  sync::completion::mode completion_mode() const noexcept { return completion_.kind(); }  ///< how the host learns that the device's part finished
  /// True when x, y and the weights are shared with the device in fine-grained SVM.
  bool shared_memory() const noexcept { return shared_; }
  /// The OpenCL kernel chosen for the shape (the one it would have been, where the kernel did not build).
  gpu::conv_kernel device_kernel() const noexcept {
    return launcher_ ? launcher_->kernel() : options_.device_kernel.value_or(gpu::default_choice(context_.caps(), shape_, sizeof(T)).kernel);
  }
  /// The device kernel's launch geometry; a default one where the kernel did not build (run_on_cpu:
  /// every run is CPU-only, so any geometry does).
  gpu::conv_config device_config() const noexcept { return launcher_ ? launcher_->config() : gpu::conv_config{}; }
  /// False when the device kernel did not build and, by device_failure::run_on_cpu, the CPU computes everything.
  bool device_available() const noexcept { return launcher_.has_value(); }

  /// Runs with the planner's plan for this shape (the first call may plan).
  void operator()(const T* x, T* y) {
    validate_io(x, y);
    bound_call call{*this, x, y};
    if constexpr (std::is_same_v<decltype(planner_.choose(shape_, call)), plan::split_plan>)
      run(x, y, planner_.choose(shape_, call));
    else
      run(x, y, {dimension::channels, planner_.choose(shape_, call)});
    show_planner(planner_, shape_, last_run_);
  }

  /// Runs with an explicit plan: the CPU computes [0, split) along plan.dimension, the device
  /// the rest. The split must be a multiple of split_granule(dimension) or the extent.
  void operator()(const T* x, T* y, plan::split_plan plan) {
    validate_io(x, y);
    validate_plan(plan);
    run(x, y, plan);
  }

  /// @name The parts of a run, for callers that schedule them themselves
  /// operator() is enqueue_device_part(), run_cpu_part(), wait_device_part() in a row. A pipeline
  /// enqueues a layer's device part early instead, behind a gate that the host opens once the
  /// input is ready, and waits for it later. No timings are recorded (last_run() keeps the last
  /// operator() call).
  /// @{
  /// Enqueues and flushes the device's part of `plan`, held back until `gate` opens; returns the
  /// event of its last command, or a null event when the device has nothing to compute. A
  /// closed gate needs shared_memory(): a staging copy would read x before the gate opens.
  cl::Event enqueue_device_part(const T* x, T* y, plan::split_plan plan, const sync::launch_gate& gate = {}) {
    validate_io(x, y);
    validate_plan(plan);
    require(gate.open() || shared_memory(), "conv2d: a gated device part needs tensors shared with the device (shared_memory())");
    device_.require_settled();
    const part_ranges r = ranges(plan);
    return r.device_part ? enqueue_device(x, y, r.device_channels, r.device_rows, gate) : cl::Event();
  }
  /// Computes the CPU's part of `plan` on the pool; returns when it is written.
  void run_cpu_part(const T* x, T* y, plan::split_plan plan) {
    validate_io(x, y);
    validate_plan(plan);
    const part_ranges r = ranges(plan);
    compute_on_cpu(x, y, r.cpu_channels, r.cpu_rows);
  }
  /// Waits for a device part enqueued last by enqueue_device_part() (`last` is its event).
  void wait_device_part(const cl::Event& last) const { completion_.wait(last, options_.timeout); }
  /// @}

  /// What the last run measured.
  const conv2d_record& last_run() const noexcept { return last_run_; }

 private:
  // What a planner times: this operator on one call's buffers, planned either way.
  struct bound_call {
    conv2d& op;
    const T* x;
    T* y;
    std::size_t extent(dimension d) const { return op.extent(d); }
    std::size_t split_granule(dimension d) const { return op.split_granule(d); }
    void run(plan::split_plan plan) { op.run(x, y, plan); }
    const conv2d_record& last_record() const { return op.last_run(); }
    // How each side would run the call, for planners that predict instead of timing.
    std::size_t element_size() const { return sizeof(T); }
    std::size_t cpu_threads() const { return op.pool_->size(); }
    gpu::conv_config device_config() const { return op.device_config(); }
    const runtime::context& context() const { return op.context_; }
    // Whether moving the split moves weights between the sides; planners that explore other splits
    // ask. Never: the host keeps them all, and the device's copy only grows (cover_weights).
    bool split_moves_weights() const { return false; }
    // The one-dimensional planner interface: a channel split.
    std::size_t columns() const { return extent(dimension::channels); }
    std::size_t split_granule() const { return split_granule(dimension::channels); }
    void run(std::size_t split) { run({dimension::channels, split}); }
  };

  static int validate(const conv2d_shape& s, std::span<const T> weights, std::span<const T> bias, const conv2d_options& options) {
    using std::to_string;
    // The kernels take every parameter and index every tensor in 32 bits; past that the checks
    // below would wrap too (two pads of 2^63 sum to 0).
    constexpr std::size_t limit = std::numeric_limits<std::int32_t>::max();
    struct field {
      std::size_t value;
      const char* name;
      bool may_be_zero = false;
    };
    const field fields[] = {{s.batch, "batch"}, {s.channels, "channels"}, {s.height, "height"}, {s.width, "width"},
                            {s.out_channels, "out_channels"}, {s.kernel_h, "kernel_h"}, {s.kernel_w, "kernel_w"},
                            {s.stride_h, "stride_h"}, {s.stride_w, "stride_w"},
                            {s.pad_top, "pad_top", true}, {s.pad_bottom, "pad_bottom", true},
                            {s.pad_left, "pad_left", true}, {s.pad_right, "pad_right", true},
                            {s.dilation_h, "dilation_h"}, {s.dilation_w, "dilation_w"}, {s.groups, "groups"}};
    for (const field& f : fields) require(f.may_be_zero || f.value > 0, std::string("conv2d: ") + f.name + " must be positive");
    for (const field& f : fields)
      require(f.value <= limit, std::string("conv2d: ") + f.name + " (" + to_string(f.value) + ") exceeds 2^31 - 1");
    const auto within_limit = [&](std::initializer_list<std::size_t> factors) {
      std::size_t product = 1;
      for (const std::size_t f : factors) {
        if (product > limit / f) return false;
        product *= f;
      }
      return true;
    };
    require(within_limit({s.batch, s.channels, s.height, s.width}), "conv2d: the input's batch * channels * height * width exceeds 2^31 - 1 elements");
    require(s.channels % s.groups == 0 && s.out_channels % s.groups == 0,
            "conv2d: groups (" + to_string(s.groups) + ") must divide channels (" + to_string(s.channels) +
                ") and out_channels (" + to_string(s.out_channels) + ")");
    require(within_limit({s.out_channels, s.channels / s.groups, s.kernel_h, s.kernel_w}),
            "conv2d: the weights' out_channels * channels / groups * kernel_h * kernel_w exceeds 2^31 - 1 elements");
    // Each field fits 31 bits, so these sums cannot wrap; the kernels index padded rows in 32 bits.
    require(s.height + s.pad_top + s.pad_bottom <= limit,
            "conv2d: the padded input height (height + pad_top + pad_bottom = " + to_string(s.height + s.pad_top + s.pad_bottom) +
                ") exceeds 2^31 - 1");
    require(s.width + s.pad_left + s.pad_right <= limit,
            "conv2d: the padded input width (width + pad_left + pad_right = " + to_string(s.width + s.pad_left + s.pad_right) +
                ") exceeds 2^31 - 1");
    const std::size_t span_h = s.dilation_h * (s.kernel_h - 1) + 1, span_w = s.dilation_w * (s.kernel_w - 1) + 1;
    require(span_h <= s.height + s.pad_top + s.pad_bottom,
            "conv2d: kernel_h spans " + to_string(span_h) + " rows (dilation included), more than the padded input height " +
                to_string(s.height + s.pad_top + s.pad_bottom));
    require(span_w <= s.width + s.pad_left + s.pad_right,
            "conv2d: kernel_w spans " + to_string(span_w) + " columns (dilation included), more than the padded input width " +
                to_string(s.width + s.pad_left + s.pad_right));
    require(within_limit({s.batch, s.out_channels, s.out_height(), s.out_width()}),
            "conv2d: the output's batch * out_channels * out_height * out_width exceeds 2^31 - 1 elements");
    require(weights.data() != nullptr && weights.size() == s.weight_size(),
            "conv2d: weights must hold out_channels * channels / groups * kernel_h * kernel_w = " + to_string(s.weight_size()) +
                " values, got " + to_string(weights.size()));
    require(bias.empty() || bias.size() == s.out_channels,
            "conv2d: bias must hold out_channels = " + to_string(s.out_channels) + " values, got " + to_string(bias.size()));
    require(options.timeout.count() > 0, "conv2d: options.timeout must be positive");
    return 0;
  }

  static std::optional<gpu::conv_choice> device_choice(const runtime::context& ctx, const conv2d_shape& shape,
                                                       const conv2d_options& options) {
    if (options.device_kernel) return gpu::conv_choice{*options.device_kernel};
    if (options.tuner) return options.tuner->conv<T>(ctx, shape);
    return std::nullopt;
  }

  static std::optional<gpu::conv_launcher<T>> make_launcher(const runtime::context& ctx, const conv2d_shape& shape,
                                                            const conv2d_options& options, bool has_bias) {
    try {
      return gpu::conv_launcher<T>(ctx, shape, options.act, has_bias, device_choice(ctx, shape, options));
    } catch (const error& e) {
      if (e.code() != errc::build_failure || options.on_device_failure != device_failure::run_on_cpu) throw;
      return std::nullopt;
    }
  }

  void validate_io(const T* x, const T* y) const {
    require(x != nullptr, "conv2d: x is null");
    require(y != nullptr, "conv2d: y is null");
    require(reinterpret_cast<std::uintptr_t>(x) % alignof(T) == 0, "conv2d: x is not aligned to its element type");
    require(reinterpret_cast<std::uintptr_t>(y) % alignof(T) == 0, "conv2d: y is not aligned to its element type");
    if (shared_) {
      require(context_.owns_svm(x, shape_.input_size() * sizeof(T)),
              "conv2d: x must be an SVM allocation of this operator's context holding batch * channels * height * width = " +
                  std::to_string(shape_.input_size()) + " values");
      require(context_.owns_svm(y, shape_.output_size() * sizeof(T)),
              "conv2d: y must be an SVM allocation of this operator's context holding batch * out_channels * OH * OW = " +
                  std::to_string(shape_.output_size()) + " values");
    }
  }

  void validate_plan(plan::split_plan plan) const {
    const std::size_t n = extent(plan.dimension), granule = split_granule(plan.dimension);
    require(plan.split <= n && (plan.split % granule == 0 || plan.split == n),
            std::string("conv2d: split ") + std::to_string(plan.split) + " along " + to_string(plan.dimension) +
                " must be a multiple of " + std::to_string(granule) + " or " + std::to_string(n));
  }

  // What each side computes under a plan.
  struct part_ranges {
    cpu::index_range cpu_channels, cpu_rows, device_channels, device_rows;
    bool device_part;
  };

  // Without a device kernel (it failed to build, run_on_cpu) the CPU computes everything.
  plan::split_plan effective(plan::split_plan plan) const {
    if (!launcher_) plan.split = extent(plan.dimension);
    return plan;
  }

  part_ranges ranges(plan::split_plan requested) const {
    const plan::split_plan plan = effective(requested);
    const bool by_channels = plan.dimension == dimension::channels;
    const cpu::index_range all_channels{0, shape_.out_channels}, all_rows{0, shape_.out_height()};
    return {by_channels ? cpu::index_range{0, plan.split} : all_channels,
            by_channels ? all_rows : cpu::index_range{0, plan.split},
            by_channels ? cpu::index_range{plan.split, shape_.out_channels} : all_channels,
            by_channels ? all_rows : cpu::index_range{plan.split, shape_.out_height()},
            plan.split < extent(plan.dimension)};
  }

  void run(const T* x, T* y, plan::split_plan plan) {
    plan = effective(plan);
    const part_ranges r = ranges(plan);
    const auto awake = keep_awake_for_device(*pool_, context_);
    const run_record timings = co_execute(
        completion_, device_, options_.timeout, r.device_part, [&] { return enqueue_device(x, y, r.device_channels, r.device_rows); },
        [&] { compute_on_cpu(x, y, r.cpu_channels, r.cpu_rows); }, [&] { compute_on_cpu(x, y, r.device_channels, r.device_rows); });
    static_cast<run_record&>(last_run_) = timings;
    last_run_.split = plan.split;
    last_run_.dimension = plan.dimension;
  }

  void compute_on_cpu(const T* x, T* y, cpu::index_range channels, cpu::index_range rows) {
    const T* weights = shared_ ? shared_weights_->data() : host_weights_.data();
    const T* bias = shared_ ? (shared_bias_ ? shared_bias_->data() : nullptr) : (host_bias_.empty() ? nullptr : host_bias_.data());
    const cpu::conv_args<T> args{shape_, x, weights, bias, y, options_.act};
    CpuKernel{}(*pool_, args, channels, rows);
  }

  cl::Event enqueue_device(const T* x, T* y, cpu::index_range channels, cpu::index_range rows, const sync::launch_gate& gate = {}) {
    const conv2d_shape& s = shape_;
    const std::size_t plane = s.out_height() * s.out_width(), first = (channels.begin * s.out_height() + rows.begin) * s.out_width();
    gpu::conv_operands<T> ops;
    if (shared_) {
      ops.x = gpu::device_ptr<const T>(x);
      ops.w = gpu::device_ptr<const T>(shared_weights_->data(), channels.begin * s.patch());
      if (shared_bias_) ops.bias = gpu::device_ptr<const T>(shared_bias_->data(), channels.begin);
      ops.y = gpu::device_ptr<T>(y, first);
      ops.y_batch_stride = s.out_channels * plane;
      ops.y_channel_stride = plane;
      return launcher_->enqueue(ops, channels, rows, completion_, gate);
    }
    // Discrete device: the part of x the block reads, copied to its place in a whole-x buffer
    // (the kernel indexes x as usual); the block of y computed compactly, then copied into place.
    const std::size_t block_plane = rows.size() * s.out_width();
    cover_weights(channels.begin);
    stage(x_stage_, x_capacity_, s.input_size(), CL_MEM_READ_ONLY);
    stage(y_stage_, y_capacity_, s.batch * channels.size() * block_plane, CL_MEM_WRITE_ONLY);
    write_input_block(x, channels, rows);
    ops.x = gpu::device_ptr<const T>(x_stage_);
    ops.w = gpu::device_ptr<const T>(device_weights_, (channels.begin - device_first_channel_) * s.patch());
    if (device_bias_() != nullptr) ops.bias = gpu::device_ptr<const T>(device_bias_, channels.begin);
    ops.y = gpu::device_ptr<T>(y_stage_);
    ops.y_batch_stride = channels.size() * block_plane;
    ops.y_channel_stride = block_plane;
    launcher_->enqueue(ops, channels, rows, completion_);
    // A channel block is one contiguous run per image; a row block one run per (image, channel).
    cl::Event copied = rows.size() == s.out_height()
                           ? gpu::read_rows(context_, y_stage_, 0, y + first, s.batch, channels.size() * plane, s.out_channels * plane)
                           : gpu::read_rows(context_, y_stage_, 0, y + first, s.batch * channels.size(), block_plane, plane);
    detail::check(context_.queue().flush(), "clFlush");
    return copied;
  }

  // Copies to x_stage_ what the output block (channels, rows) reads: the input channels of its
  // groups (a depthwise block: its own channels), and the input rows under its output rows
  // (all of them for a channel block). A conv reads all of x only when neither cut saves any.
  void write_input_block(const T* x, cpu::index_range channels, cpu::index_range rows) {
    const conv2d_shape& s = shape_;
    const std::size_t group_in = s.channels / s.groups, group_out = s.out_channels / s.groups;
    const std::size_t first_channel = channels.begin / group_out * group_in, end_channel = ((channels.end - 1) / group_out + 1) * group_in;
    // Input rows under output rows [rows.begin, rows.end): from the first one's window top to the
    // last one's window bottom, less the padding.
    const auto window_top = [&](std::size_t row) { return static_cast<std::ptrdiff_t>(row * s.stride_h) - static_cast<std::ptrdiff_t>(s.pad_top); };
    const std::ptrdiff_t height = static_cast<std::ptrdiff_t>(s.height);
    const std::ptrdiff_t top = std::clamp<std::ptrdiff_t>(window_top(rows.begin), 0, height);
    const std::ptrdiff_t bottom = std::clamp<std::ptrdiff_t>(window_top(rows.end - 1) + static_cast<std::ptrdiff_t>(s.dilation_h * (s.kernel_h - 1) + 1), 0, height);
    const std::size_t plane = s.height * s.width, image = s.channels * plane, planes = end_channel - first_channel;
    if (top == 0 && bottom == height)  // whole planes: one run of them per image
      gpu::write_block(context_, x_stage_, x, first_channel * plane, planes * plane, s.batch, image, 1, s.batch * image);
    else if (bottom > top)
      gpu::write_block(context_, x_stage_, x, first_channel * plane + static_cast<std::size_t>(top) * s.width,
                       static_cast<std::size_t>(bottom - top) * s.width, planes, plane, s.batch, image);
  }

  /// Makes the device hold the weights of channels [first, O): uploaded once, regrown only when
  /// a split gives the device channels it never had.
  void cover_weights(std::size_t first) {
    if (first >= device_first_channel_) return;
    const std::size_t count = (shape_.out_channels - first) * shape_.patch();
    device_weights_ = gpu::make_buffer<T>(context_, count, CL_MEM_READ_ONLY);
    detail::check(context_.queue().enqueueWriteBuffer(device_weights_, CL_TRUE, 0, count * sizeof(T),
                                                      host_weights_.data() + first * shape_.patch()),
                  "clEnqueueWriteBuffer(weights)");
    device_first_channel_ = first;
  }

  void stage(cl::Buffer& buffer, std::size_t& capacity, std::size_t count, cl_mem_flags flags) {
    if (capacity >= count) return;
    buffer = gpu::make_buffer<T>(context_, count, flags);
    capacity = count;
  }

  runtime::context context_;
  cpu::thread_pool* pool_;
  conv2d_shape shape_;
  conv2d_options options_;
  bool shared_;
  sync::completion completion_;
  device_guard device_;
  std::optional<memory::svm_vector<T>> shared_weights_, shared_bias_;  // shared path
  std::vector<T> host_weights_, host_bias_;                            // staged path

  cl::Buffer device_weights_, device_bias_, x_stage_, y_stage_;
  std::size_t device_first_channel_ = shape_.out_channels, x_capacity_ = 0, y_capacity_ = 0;
  std::optional<gpu::conv_launcher<T>> launcher_;  // empty when its kernel did not build (run_on_cpu)
  Planner planner_;
  conv2d_record last_run_;
};

}  // namespace coexec::ops

namespace coexec {
using ops::conv2d;
using ops::conv2d_options;
}  // namespace coexec
