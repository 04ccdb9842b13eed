#pragma once
// coexec::pipeline — a network composed of co-executed layers (ops::linear, ops::conv2d) and CPU
// steps (pipe/cpu_steps.hpp), run forward over tensors the pipeline allocates once: SVM of its
// context where the device has fine-grained SVM (the layers read and write them in place), host
// memory elsewhere.
//
//   coexec::pipeline<float> net(ctx, pool);
//   auto x = net.input({1, 3, 224, 224});
//   auto y = net.add("stem", std::make_unique<coexec::conv2d<float>>(ctx, pool, shape, w, b), x);
//   auto z = net.add("res", coexec::pipe::steps::add<float>(), {y, other});
//   std::copy(image.begin(), image.end(), net.input_data().begin());
//   net(coexec::pipe::mode::streamed);  // net.output() holds the last step's output
//
// Modes (pipe::mode): per_layer runs each layer as its operator() does: enqueue the device part,
// compute the CPU part, wait; the first per_layer run plans every layer, anchored on passes over
// the network on each side alone (pipeline_options::anchor_passes). streamed takes those
// plans and moves dispatch off the critical path: before step i ends (see run_streamed), step
// i+1's device part is enqueued behind a sync::launch_gate on a host flag in fine-grained SVM:
// its kernel is dispatched while step i runs and its work-items wait at their start; the host
// raises the flag the moment both halves of step i are done. A failure raises the flag to
// sync::abort_value, which opens every gate, and waits for what was enqueued before rethrowing.
// (A separate gate kernel in front of each layer would leave one dispatch on the critical path:
// about 20 us per layer on PoCL, against about 1 us for a gate inside the layer's kernel.)
// Devices without SVM atomics, layers that stage their tensors (shared_memory() false) or
// options.completion = event_polling fall back to per_layer.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coexec/error.hpp"
#include "coexec/memory/io_buffer.hpp"
#include "coexec/pipe/cpu_steps.hpp"
#include "coexec/pipe/layers.hpp"
#include "coexec/sync/completion.hpp"
#include "coexec/sync/spin_flag.hpp"

namespace coexec::pipe {

/// A tensor of a pipeline, as input() and add() return it.
struct tensor {
  std::size_t id = 0;  ///< its index among the pipeline's tensors (0: the input)
};

/// How a pipeline runs streamed.
struct pipeline_options {
  /// svm_counter: streamed runs hold each layer's kernels behind a host flag where the device
  /// has SVM atomics; event_polling forces the per_layer fallback on any device.
  sync::completion::mode completion = sync::completion::mode::svm_counter;
  std::chrono::nanoseconds timeout = sync::default_timeout;  ///< longest wait for enqueued work after a failure
  /// Passes over the network on each side alone, after a warm-up pass, before the first plans:
  /// the layers' planners anchor on their times in the network (see anchor_in_context). 0: each
  /// planner anchors on its own, timing its layer in a loop.
  int anchor_passes = 3;
};

/// What one step of a run did.
struct step_record {
  std::string name;  ///< the name it was added under
  std::string kind;  ///< what it computes
  tensor_shape shape;  ///< its output's shape
  bool co_executed = false;  ///< true for layers (ops::linear, ops::conv2d, ops::attention), false for CPU steps
  std::string split;  ///< where it was cut: "cpu", "gpu", "ch 64/96", "rows 40/112"
  double seconds = 0;  ///< its time on the critical path (streamed: from the previous step's end to its own)
  double predicted_seconds = 0;  ///< the planner's prediction for its plan; NaN where the planner has none
};

/// What one run did.
struct pipeline_record {
  pipe::mode mode = pipe::mode::per_layer;  ///< the mode that ran (streamed may have fallen back to per_layer)
  double seconds = 0;  ///< the whole run
  std::vector<step_record> steps;  ///< one per step, in order
};

/// A step's ideal co-executed time from its single-side times: t_cpu·t_gpu / (t_cpu + t_gpu) for
/// a layer (both sides busy to the end, nothing lost to the split or to syncing), the CPU time
/// for a CPU step. Co-execution is judged against the sum of these over a pipeline's steps.
constexpr double ideal_seconds(bool co_executed, double cpu_seconds, double device_seconds) noexcept {
  if (!co_executed) return cpu_seconds;
  const double both = cpu_seconds + device_seconds;
  return both > 0 ? cpu_seconds * device_seconds / both : 0;
}

template <class T>
/// A feed-forward network of co-executed layers and CPU steps over tensors allocated once
/// (see the file comment).
class pipeline {
 public:
  /// Layers added must run on `ctx`; CPU steps run on `pool`.
  pipeline(const runtime::context& ctx, cpu::thread_pool& pool, pipeline_options options = {})
      : context_(ctx), pool_(&pool), options_(options), shared_(ctx.caps().svm_fine) {}

  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  /// Declares the input tensor; once, before any step.
  tensor input(tensor_shape shape) {
    require(buffers_.empty(), "pipeline: input() must be called once, before any step");
    require(!shape.empty() && elements(shape) > 0, "pipeline: the input shape " + to_string(shape) + " is empty");
    return allocate(std::move(shape));
  }

  template <class K, class P>
  /// Adds a co-executed linear over `x` of shape {..., K} (its rows M: the product of the
  /// leading dimensions); the output is {..., N}.
  tensor add(std::string name, std::unique_ptr<ops::linear<T, K, P>> op, tensor x) {
    const tensor_shape& in = checked_shape(name, x);
    check_operator(name, op.get());
    require(in.back() == op->depth(), "pipeline: step '" + name + "' (linear, K = " + std::to_string(op->depth()) +
                                          ") cannot take a tensor of shape " + to_string(in) + ": its last dimension must be K");
    tensor_shape out = in;
    out.back() = op->columns();
    const std::size_t rows = elements(in) / in.back();
    return append(std::move(name), std::make_unique<column_split_step<ops::linear<T, K, P>>>(std::move(op), rows), {x}, std::move(out));
  }

  template <class P>
  /// Adds a co-executed multi-head self-attention over `qkv` of shape {S, 3D} (Q | K | V per
  /// row, as a fused QKV projection writes them); the output is {S, D}.
  tensor add(std::string name, std::unique_ptr<ops::attention<T, P>> op, tensor qkv) {
    const tensor_shape& in = checked_shape(name, qkv);
    check_operator(name, op.get());
    require(in.size() == 2 && in[1] == 3 * op->width(), "pipeline: step '" + name + "' (" + op->kind() + ") takes a tensor of shape {S, " +
                                                            std::to_string(3 * op->width()) + "}, got " + to_string(in));
    tensor_shape out{in[0], op->width()};
    return append(std::move(name), std::make_unique<column_split_step<ops::attention<T, P>>>(std::move(op), in[0]), {qkv}, std::move(out));
  }

  template <class K, class P>
  /// Adds a co-executed conv2d over `x`, whose shape must be the operator's input
  /// {batch, channels, height, width}; the output is {batch, out_channels, OH, OW}.
  tensor add(std::string name, std::unique_ptr<ops::conv2d<T, K, P>> op, tensor x) {
    const tensor_shape& in = checked_shape(name, x);
    check_operator(name, op.get());
    const conv2d_shape& s = op->shape();
    const tensor_shape expected{s.batch, s.channels, s.height, s.width};
    require(in == expected, "pipeline: step '" + name + "' (conv2d) takes a tensor of shape " + to_string(expected) + ", got " +
                                to_string(in));
    tensor_shape out{s.batch, s.out_channels, s.out_height(), s.out_width()};
    return append(std::move(name), std::make_unique<conv2d_step<ops::conv2d<T, K, P>>>(std::move(op)), {x}, std::move(out));
  }

  /// Adds a CPU step over `inputs`; its output_shape rule decides the output (and rejects inputs it cannot take).
  tensor add(std::string name, cpu_step<T> s, std::vector<tensor> inputs) {
    std::vector<tensor_shape> shapes;
    for (tensor t : inputs) shapes.push_back(checked_shape(name, t));
    tensor_shape out;
    try {
      out = s.output_shape(shapes);
    } catch (const error& e) {
      throw error(e.code(), "pipeline: step '" + name + "': " + e.what());
    }
    return append(std::move(name), std::make_unique<cpu_step_runner<T>>(std::move(s), *pool_), std::move(inputs), std::move(out));
  }

  /// The input tensor's memory: fill it before a run.
  std::span<T> input_data() {
    require(!buffers_.empty(), "pipeline: no input declared");
    return {buffers_.front()->data(), buffers_.front()->size()};
  }
  /// The last step's output, valid after a run.
  std::span<const T> output() const {
    require(!steps_.empty(), "pipeline: no steps");
    return {steps_.back().io.output, elements(steps_.back().io.output_shape)};
  }
  /// The last step's output, writable (e.g. for post-processing in place).
  std::span<T> output() {
    require(!steps_.empty(), "pipeline: no steps");
    return {steps_.back().io.output, elements(steps_.back().io.output_shape)};
  }
  const tensor_shape& output_shape() const { return steps_.back().io.output_shape; }  ///< the last step's output shape (needs a step)
  std::size_t size() const noexcept { return steps_.size(); }  ///< the number of steps
  bool shared_memory() const noexcept { return shared_; }  ///< true when the tensors are SVM of the context

  /// True when mode::streamed really streams here (else it runs per_layer): SVM atomics,
  /// svm_counter asked for, and every co-executed layer sharing its tensors with the device.
  bool streams() const {
    if (options_.completion != sync::completion::mode::svm_counter || !context_.caps().svm_flags()) return false;
    for (const entry& e : steps_)
      if (e.runner->co_executed() && !e.runner->shared_memory()) return false;
    return true;
  }

  /// Runs the network on input_data() into output(). While some layer has no plan yet, a
  /// per_layer or streamed run first times each side alone over the network (anchor_passes), and
  /// a streamed one then runs per_layer once. Errors propagate as thrown, after the device is idle.
  void operator()(mode m = mode::per_layer) {
    require(!steps_.empty(), "pipeline: no steps");
    step_seconds_.resize(steps_.size());
    if (m == mode::streamed && !streams()) m = mode::per_layer;
    const bool unplanned = !std::all_of(steps_.begin(), steps_.end(), [](const entry& e) { return e.runner->planned(); });
    if (unplanned && (m == mode::per_layer || m == mode::streamed)) anchor_in_context();
    if (unplanned && m == mode::streamed) run_each(mode::per_layer);  // plans
    const auto awake = ops::keep_awake_for_device(*pool_, context_);  // no worker sleeps between the steps
    const auto start = clock::now();
    m == mode::streamed ? run_streamed() : run_each(m);
    record(m, seconds_since(start));
  }

  /// What the last run did, step by step.
  const pipeline_record& last_run() const noexcept { return record_; }

 private:
  using clock = std::chrono::steady_clock;

  struct entry {
    std::string name;
    std::unique_ptr<pipe::step<T>> runner;
    step_io<T> io;
  };

  static double seconds_since(clock::time_point start) { return std::chrono::duration<double>(clock::now() - start).count(); }

  tensor allocate(tensor_shape shape) {
    buffers_.push_back(std::make_unique<memory::io_buffer<T>>(context_, elements(shape), shared_));
    shapes_.push_back(std::move(shape));
    return {buffers_.size() - 1};
  }

  const tensor_shape& checked_shape(const std::string& name, tensor t) const {
    require(!buffers_.empty(), "pipeline: step '" + name + "' added before input()");
    require(t.id < shapes_.size(), "pipeline: step '" + name + "' reads tensor " + std::to_string(t.id) + ", which this pipeline does not have");
    return shapes_[t.id];
  }

  template <class Op>
  void check_operator(const std::string& name, const Op* op) const {
    require(op != nullptr, "pipeline: step '" + name + "' has no operator");
    require(op->context() == context_, "pipeline: step '" + name + "' runs on another context than the pipeline");
  }

  tensor append(std::string name, std::unique_ptr<step<T>> s, std::vector<tensor> inputs, tensor_shape out) {
    require(!out.empty() && elements(out) > 0, "pipeline: step '" + name + "' would output an empty tensor");
    const tensor y = allocate(out);
    step_io<T> io;
    for (tensor t : inputs) {
      io.inputs.push_back(buffers_[t.id]->data());
      io.input_shapes.push_back(shapes_[t.id]);
    }
    io.output = buffers_[y.id]->data();
    io.output_shape = std::move(out);
    steps_.push_back({std::move(name), std::move(s), std::move(io)});
    return y;
  }

  void run_each(mode m) {
    for (std::size_t i = 0; i < steps_.size(); ++i) {
      const auto start = clock::now();
      steps_[i].runner->run(m, steps_[i].io);
      step_seconds_[i] = seconds_since(start);
    }
  }

  // Before the first plans: each side alone over the whole network, a warm-up pass and then
  // anchor_passes passes whose runs the layers' planners anchor on. Timed there, a layer runs
  // with its data evicted by the others, as it will in the network; the planner's own anchoring
  // times it in a loop of its runs, where its data stays in cache. On pocl-2 the CPU took 157 µs
  // for MobileNetV2's b8 depthwise layer in the network against 94 µs in a loop, and plans made
  // on the loop's times were slower than the device alone on 7 of its 17 depthwise layers.
  void anchor_in_context() {
    if (options_.anchor_passes <= 0) return;
    for (const mode side : {mode::device_only, mode::cpu_only}) {
      run_each(side);
      for (int pass = 0; pass < options_.anchor_passes; ++pass)
        for (entry& e : steps_) e.runner->anchor_run(side, e.io);
    }
  }

  void run_streamed() {
    if (!ready_word_) ready_word_.emplace(context_, 1);
    const sync::spin_flag ready(ready_word_->data());
    ready.raise(0);  // nothing waits on it between runs
    std::vector<cl::Event> pending(steps_.size());
    // Step i's device part, behind a gate that opens when the host raises the flag to i.
    const auto launch = [&](std::size_t i) {
      if (!steps_[i].runner->device_part()) return;
      const sync::launch_gate gate{i > 0 ? &ready : nullptr, static_cast<std::uint32_t>(i)};
      pending[i] = steps_[i].runner->enqueue_device(steps_[i].io, gate);
    };
    try {
      launch(0);
      for (std::size_t i = 0; i < steps_.size(); ++i) {
        const auto start = clock::now();
        // Step i+1 is enqueued while the device is idle or busy with step i: before a CPU-only
        // step (its gate is then spinning by the time the flag rises), after the CPU part of a
        // co-executed one (the enqueue overlaps what is left of the device part instead of
        // delaying the CPU part; on a balanced split both end together).
        const bool device_busy = pending[i]() != nullptr, next = i + 1 < steps_.size();
        if (next && !device_busy) launch(i + 1);
        steps_[i].runner->run_cpu(steps_[i].io);
        if (next && device_busy) launch(i + 1);
        if (device_busy) steps_[i].runner->wait_device(pending[i]);
        ready.raise(static_cast<std::uint32_t>(i + 1));
        step_seconds_[i] = seconds_since(start);
      }
    } catch (...) {
      ready.abort();  // opens every gate: no kernel is left spinning
      drain(pending);
      throw;
    }
  }

  // Waits (up to the timeout) for every command a failed streamed run enqueued, so that none
  // outlives the error; a second failure here would only hide the first.
  void drain(const std::vector<cl::Event>& pending) const {
    for (const cl::Event& event : pending)
      if (event() != nullptr) try {
          sync::spin_until([&] { return sync::completion::event_complete(event); }, options_.timeout, "pipeline drain");
        } catch (const error&) {
        }
  }

  // Described after the run: the strings and predictions stay off the critical path.
  void record(mode m, double seconds) {
    record_.mode = m;
    record_.seconds = seconds;
    record_.steps.resize(steps_.size());
    for (std::size_t i = 0; i < steps_.size(); ++i) {
      const entry& e = steps_[i];
      record_.steps[i] = {e.name, e.runner->kind(), e.io.output_shape, e.runner->co_executed(), e.runner->split(),
                          step_seconds_[i], e.runner->predicted_seconds()};
    }
  }

  runtime::context context_;
  cpu::thread_pool* pool_;
  pipeline_options options_;
  bool shared_;
  std::vector<std::unique_ptr<memory::io_buffer<T>>> buffers_;
  std::vector<tensor_shape> shapes_;
  std::vector<entry> steps_;
  std::optional<memory::svm_vector<std::uint32_t>> ready_word_;  // the "input ready" flag gates spin on
  std::vector<double> step_seconds_;  // of the run in progress
  pipeline_record record_;
};

}  // namespace coexec::pipe

namespace coexec {
using pipe::pipeline;
}  // namespace coexec
