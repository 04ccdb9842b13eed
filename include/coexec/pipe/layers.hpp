#pragma once
// Co-executed operators as pipeline steps. A per_layer run calls the operator as a user would
// (its planner plans on first use) and remembers the plan: the planner's, where it tells it
// (plan::predicted::planned(): the split it ran may have been an exploration of one side), else
// the split it ran. A streamed run replays that plan through the operator's parts
// (enqueue_device_part, run_cpu_part, wait_device_part).
#include <memory>
#include <optional>
#include <string>

#include "coexec/error.hpp"
#include "coexec/ops/attention.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/pipe/step.hpp"

namespace coexec::pipe {

/// The plan `op`'s planner holds for `key`, where the planner tells it (plan::predicted does).
template <class Plan, class Op, class Key>
std::optional<Plan> held_plan(Op& op, const Key& key) {
  if constexpr (requires { op.planner().planned(key); })
    return op.planner().planned(key);
  else
    return std::nullopt;
}

/// "cpu", "gpu", or the CPU's share "<prefix><split>/<extent>".
inline std::string describe_split(const std::string& prefix, std::size_t split, std::size_t extent) {
  if (split == extent) return "cpu";
  if (split == 0) return "gpu";
  return prefix + std::to_string(split) + "/" + std::to_string(extent);
}

/// Gives `op`'s planner the single-side run `op` just made of `key`, where the planner takes such
/// runs to anchor its first plan on (plan::predicted::anchor_with).
template <class Op, class Key>
void anchor_with_last_run(Op& op, const Key& key) {
  if constexpr (requires { op.planner().anchor_with(key, op.last_run()); }) op.planner().anchor_with(key, op.last_run());
}

template <class Op>
/// An operator over `rows` rows whose output is split along columns() at one point: ops::linear
/// (output channels; its input {..., K} has M = the leading dimensions' product as rows) and
/// ops::attention (heads; its input {S, 3D} has the S tokens as rows).
class column_split_step final : public step<typename Op::value_type> {
 public:
  using T = typename Op::value_type;  ///< the element type

  /// Takes the operator; `rows` is the row count of every call.
  column_split_step(std::unique_ptr<Op> op, std::size_t rows) : op_(std::move(op)), rows_(rows) {}

  std::string kind() const override { return op_->kind(); }
  bool co_executed() const override { return true; }
  bool shared_memory() const override { return op_->shared_memory(); }

  void run(mode m, const step_io<T>& io) override {
    if (m == mode::cpu_only || m == mode::device_only) {
      last_ = m == mode::cpu_only ? op_->columns() : 0;
      (*op_)(io.inputs[0], rows_, io.output, last_);
      return;
    }
    (*op_)(io.inputs[0], rows_, io.output);
    last_ = op_->last_run().split;
    plan_ = held_plan<std::size_t>(*op_, op_->shape(rows_)).value_or(last_);
  }
  void anchor_run(mode side, const step_io<T>& io) override {
    run(side, io);
    anchor_with_last_run(*op_, op_->shape(rows_));
  }
  bool planned() const override { return plan_.has_value(); }
  std::string split() const override { return describe_split(Op::split_unit, last_, op_->columns()); }
  double predicted_seconds() const override {
    if constexpr (requires { op_->planner().estimate(op_->shape(rows_), std::size_t{}).total(); }) {
      if (plan_) return op_->planner().estimate(op_->shape(rows_), *plan_).total();
    }
    return step<T>::predicted_seconds();
  }

  bool device_part() const override { return plan_ && *plan_ < op_->columns(); }
  cl::Event enqueue_device(const step_io<T>& io, const sync::launch_gate& gate) override {
    return op_->enqueue_device_part(io.inputs[0], rows_, io.output, planned_split(), gate);
  }
  void run_cpu(const step_io<T>& io) override {
    last_ = planned_split();
    op_->run_cpu_part(io.inputs[0], rows_, io.output, last_);
  }
  void wait_device(const cl::Event& last) override { op_->wait_device_part(last); }

 private:
  std::size_t planned_split() const {
    if (!plan_) throw error(errc::invalid_argument, "pipeline: " + kind() + " has no plan yet (run it per_layer first)");
    return *plan_;
  }

  std::unique_ptr<Op> op_;
  std::size_t rows_;
  std::optional<std::size_t> plan_;
  std::size_t last_ = 0;
};

template <class Op>
/// An ops::conv2d over an input of shape {batch, channels, height, width}.
class conv2d_step final : public step<typename Op::value_type> {
 public:
  using T = typename Op::value_type;  ///< the element type

  /// Takes the operator.
  explicit conv2d_step(std::unique_ptr<Op> op) : op_(std::move(op)) {}

  std::string kind() const override {
    const conv2d_shape& s = op_->shape();
    return std::string(s.groups == s.channels && s.groups > 1 ? "dwconv " : "conv ") + std::to_string(s.kernel_h) + "x" +
           std::to_string(s.kernel_w) + "/" + std::to_string(s.stride_h);
  }
  bool co_executed() const override { return true; }
  bool shared_memory() const override { return op_->shared_memory(); }

  void run(mode m, const step_io<T>& io) override {
    if (m == mode::cpu_only || m == mode::device_only) {
      last_ = {plan::split_dimension::channels, m == mode::cpu_only ? op_->shape().out_channels : 0};
      (*op_)(io.inputs[0], io.output, last_);
      return;
    }
    (*op_)(io.inputs[0], io.output);
    last_ = {op_->last_run().dimension, op_->last_run().split};
    plan_ = held_plan<plan::split_plan>(*op_, op_->shape()).value_or(last_);
  }
  void anchor_run(mode side, const step_io<T>& io) override {
    run(side, io);
    anchor_with_last_run(*op_, op_->shape());
  }
  bool planned() const override { return plan_.has_value(); }
  std::string split() const override {
    return describe_split(last_.dimension == plan::split_dimension::channels ? "ch " : "rows ", last_.split,
                          op_->extent(last_.dimension));
  }
  double predicted_seconds() const override {
    if constexpr (requires { op_->planner().estimate(op_->shape(), *plan_).total(); }) {
      if (plan_) return op_->planner().estimate(op_->shape(), *plan_).total();
    }
    return step<T>::predicted_seconds();
  }

  bool device_part() const override { return plan_ && plan_->split < op_->extent(plan_->dimension); }
  cl::Event enqueue_device(const step_io<T>& io, const sync::launch_gate& gate) override {
    return op_->enqueue_device_part(io.inputs[0], io.output, planned_split(), gate);
  }
  void run_cpu(const step_io<T>& io) override {
    last_ = planned_split();
    op_->run_cpu_part(io.inputs[0], io.output, last_);
  }
  void wait_device(const cl::Event& last) override { op_->wait_device_part(last); }

 private:
  plan::split_plan planned_split() const {
    if (!plan_) throw error(errc::invalid_argument, "pipeline: " + kind() + " has no plan yet (run it per_layer first)");
    return *plan_;
  }

  std::unique_ptr<Op> op_;
  std::optional<plan::split_plan> plan_;
  plan::split_plan last_;
};

}  // namespace coexec::pipe
