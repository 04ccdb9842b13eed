#pragma once
// probe: measures the synchronisation costs of a device with tiny kernels (kernels/
// sync_probe.cl) — what clFinish, event polling and SVM spinning cost per launch, and the raw
// host->device->host flag round trip. The demo, bench_sync and calibration use it.
#include <chrono>
#include <cstdint>

#include "coexec/kernels/sync.hpp"
#include "coexec/kernels/sync_probe.hpp"
#include "coexec/sync/completion.hpp"

namespace coexec::sync {

/// Measures a device's synchronisation costs with tiny kernels: clFinish, event polling, SVM
/// spinning per launch, and the host-kernel flag round trip.
class probe {
 public:
  /// Builds the probe kernels on `ctx` and allocates their SVM output.
  explicit probe(const runtime::context& ctx)
      : context_(ctx), out_(ctx, work_items), completion_(ctx),
        fill_(ctx.kernel(source(), "coexec_probe_fill")) {
    coexec::detail::check(clSetKernelArgSVMPointer(fill_(), 0, out_.data()), "clSetKernelArgSVMPointer");
  }

  /// OpenCL source of the probe kernels (kernels/sync.cl followed by kernels/sync_probe.cl).
  static const std::string& source() {
    static const std::string joined = kernels::sync() + kernels::sync_probe();
    return joined;
  }

  /// Enqueue a tiny kernel, then clFinish.
  void launch_finish() {
    enqueue(fill_);
    context_.finish();
  }
  /// Enqueue a tiny kernel, flush, then poll its event.
  void launch_poll() {
    const cl::Event done = enqueue(fill_);
    spin_until([&] { return completion::event_complete(done); }, default_timeout, "probe event poll");
  }
  /// Enqueue a tiny kernel, flush, then spin on the SVM counter it bumps (event polling where
  /// the device has no SVM flags).
  void launch_spin() { completion_.wait(enqueue(fill_)); }

  completion::mode completion_mode() const { return completion_.kind(); }  ///< how launch_spin() detects completion on this device

  /// Round trips through a kernel that is already running: the host raises `ping` to r, the
  /// kernel answers with `pong` = r. Returns the mean round trip. errc::unsupported without SVM flags.
  std::chrono::nanoseconds pingpong(std::uint32_t rounds) {
    if (!context_.caps().svm_flags())
      throw error(errc::unsupported, "pingpong needs fine-grained SVM atomics, which '" + context_.caps().name + "' lacks");
    memory::svm_vector<std::uint32_t> flags(context_, 2);
    spin_flag ping(flags.data()), pong(flags.data() + 1);
    auto kernel = context_.kernel(source(), "coexec_probe_pingpong");
    coexec::detail::check(clSetKernelArgSVMPointer(kernel(), 0, ping.address()), "clSetKernelArgSVMPointer");
    coexec::detail::check(clSetKernelArgSVMPointer(kernel(), 1, pong.address()), "clSetKernelArgSVMPointer");
    coexec::detail::check(kernel.setArg(2, rounds + 1), "clSetKernelArg");
    cl::Event running;
    coexec::detail::check(context_.queue().enqueueNDRangeKernel(kernel, cl::NullRange, cl::NDRange(1), cl::NDRange(1),
                                                                nullptr, &running),
                          "clEnqueueNDRangeKernel");
    coexec::detail::check(context_.queue().flush(), "clFlush");
    try {
      ping.raise(1);  // first round only proves the kernel is running
      pong.wait(1);
      const auto start = std::chrono::steady_clock::now();
      for (std::uint32_t r = 2; r <= rounds + 1; ++r) {
        ping.raise(r);
        pong.wait(r);
      }
      const auto elapsed = std::chrono::steady_clock::now() - start;
      spin_until([&] { return completion::event_complete(running); }, default_timeout, "pingpong kernel");
      return elapsed / rounds;
    } catch (...) {
      ping.abort();  // never leave the kernel spinning; a kernel that cannot see the abort is a timeout, not a hang
      spin_until([&] { return completion::event_complete(running); }, default_timeout, "pingpong kernel after abort");
      throw;
    }
  }

 private:
  static constexpr std::size_t work_items = 64;

  cl::Event enqueue(cl::Kernel kernel) {
    completion_.bind(kernel, 2);
    coexec::detail::check(kernel.setArg(1, cl_uint{1}), "clSetKernelArg");
    cl::Event event;
    coexec::detail::check(context_.queue().enqueueNDRangeKernel(kernel, cl::NullRange, cl::NDRange(work_items),
                                                                cl::NullRange, nullptr, &event),
                          "clEnqueueNDRangeKernel");
    coexec::detail::check(context_.queue().flush(), "clFlush");
    return event;
  }

  runtime::context context_;
  memory::svm_vector<std::uint32_t> out_;
  completion completion_;
  cl::Kernel fill_;
};

}  // namespace coexec::sync
