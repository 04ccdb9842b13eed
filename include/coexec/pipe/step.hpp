#pragma once
// What a pipeline is made of: tensors (shapes only; the pipeline owns the memory) and steps.
// A step computes one output tensor from one or more input tensors. Co-executed steps (linear,
// conv2d, attention: pipe/layers.hpp) also expose their device part separately, so that a streamed
// pipeline can enqueue it early; CPU steps (pipe/cpu_steps.hpp) run on the thread pool only.
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "coexec/cpu/thread_pool.hpp"
#include "coexec/runtime/context.hpp"
#include "coexec/sync/spin_flag.hpp"

namespace coexec::pipe {

/// Dimensions of a tensor, outermost first: {M, K} for a linear's input, {N, C, H, W} for a conv2d's.
using tensor_shape = std::vector<std::size_t>;

/// Elements of a tensor of `shape`.
inline std::size_t elements(const tensor_shape& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

/// "1x32x112x112".
inline std::string to_string(const tensor_shape& shape) {
  std::string text;
  for (std::size_t d : shape) {
    if (!text.empty()) text += 'x';
    text += std::to_string(d);
  }
  return text;
}

/// How a pipeline runs its steps.
enum class mode {
  cpu_only,     ///< every co-executed step entirely on the CPU, one after the other
  device_only,  ///< every co-executed step entirely on the device, one after the other
  per_layer,    ///< planned splits; each step as the operators run it: enqueue, CPU part, wait
  streamed      ///< planned splits; step i+1's device part enqueued before step i ends, behind a gate the host opens
};

/// Name of a mode, for reports and benchmark names.
constexpr const char* to_string(mode m) noexcept {
  switch (m) {
    case mode::cpu_only: return "cpu";
    case mode::device_only: return "gpu";
    case mode::per_layer: return "per_layer";
    case mode::streamed: return "streamed";
  }
  return "?";
}

/// The tensors one step reads and writes, fixed when the pipeline is built.
template <class T>
struct step_io {
  std::vector<const T*> inputs;  ///< one pointer per input tensor
  std::vector<tensor_shape> input_shapes;  ///< their shapes, in the same order
  T* output = nullptr;  ///< the output tensor
  tensor_shape output_shape;  ///< its shape
};

/// One step of a pipeline. CPU steps implement kind() and run_cpu(); co-executed steps also
/// run(), enqueue_device() and wait_device() and describe their plan.
template <class T>
class step {
 public:
  virtual ~step() = default;

  virtual std::string kind() const = 0;  ///< what the step computes, e.g. "conv 3x3/2" or "softmax"
  virtual bool co_executed() const { return false; }  ///< true when part of the step can run on the device
  /// True when the device reads and writes the step's tensors in place (fine-grained SVM): only
  /// then may its device part be enqueued before its input is written.
  virtual bool shared_memory() const { return true; }

  /// Runs the whole step as `m` says (a streamed pipeline's steps run per_layer here); a
  /// per_layer run plans the step on first use and remembers the plan.
  virtual void run(mode m, const step_io<T>& io) {
    static_cast<void>(m);
    run_cpu(io);
  }
  /// Runs the whole step on one side alone (cpu_only or device_only) and gives its planner the
  /// run, timed in the network, to anchor its first plan on (plan::predicted::anchor_with).
  virtual void anchor_run(mode side, const step_io<T>& io) { run(side, io); }
  /// True once a per_layer run planned the step (CPU steps need no plan).
  virtual bool planned() const { return true; }
  /// Where the last run cut the step: "cpu", "gpu", "ch 64/96" (the CPU's share) or "rows 40/112".
  virtual std::string split() const { return "cpu"; }
  /// The planner's prediction for the planned split in seconds; NaN where the planner has none.
  virtual double predicted_seconds() const { return std::numeric_limits<double>::quiet_NaN(); }

  /// @name The planned split's parts, for streamed runs (after a per_layer run planned the step)
  /// @{
  /// True when the planned split leaves the device a part.
  virtual bool device_part() const { return false; }
  /// Enqueues and flushes the device part, held back until `gate` opens; the null event when
  /// there is none.
  virtual cl::Event enqueue_device(const step_io<T>& io, const sync::launch_gate& gate) {
    static_cast<void>(io);
    static_cast<void>(gate);
    return {};
  }
  virtual void run_cpu(const step_io<T>& io) = 0;  ///< computes the CPU part (a CPU step: all of it)
  /// Waits for the device part enqueued last (`last` is its event).
  virtual void wait_device(const cl::Event& last) { static_cast<void>(last); }
  /// @}
};

}  // namespace coexec::pipe
