#pragma once
// Weights of a dense layer in the panel layout (memory/panels.hpp), held once.
//
// Fine-grained SVM devices: one SVM copy that both sides read, so any split point works without
// repacking (bytes held ~ 1.0x the raw weights, plus the padding of the last panel).
// Other devices (discrete GPUs: no shared memory): each side holds only its slice plus
// a margin (4 panels or 1/16 of them, whichever is more) — the CPU panels [0, host_end) in host
// memory, the device panels [device_begin, P) in a device buffer. A split inside the overlap
// costs nothing; one outside it copies just the panels that change sides, device <-> host, and
// re-centres the margins. The two ranges always overlap, so together they hold every panel.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <vector>

#include "coexec/gpu/gemm.hpp"
#include "coexec/memory/panels.hpp"
#include "coexec/memory/svm_vector.hpp"

namespace coexec::ops {

template <class T>
/// A dense layer's weights in the panel layout, held once: one shared SVM copy on fine-grained
/// SVM devices, else a host slice and a device slice with overlapping margins (see the file comment).
class split_weights {
 public:
  static constexpr std::size_t panel_width = memory::panel_width<T>;  ///< columns per panel

  /// Shares one SVM copy when `share` is set and the device has fine-grained SVM.
  split_weights(const runtime::context& ctx, const T* w, std::size_t n, std::size_t k, bool share = true)
      : context_(ctx), n_(n), k_(k), panels_((n + panel_width - 1) / panel_width) {
    if (share && ctx.caps().svm_fine) {
      shared_.emplace(ctx, memory::packed_size<T>(n, k));
      memory::pack_panels(w, n, k, shared_->data());
    } else {
      host_.resize(memory::packed_size<T>(n, k));
      memory::pack_panels(w, n, k, host_.data());
      host_end_ = device_begin_ = panels_;  // everything on the host until the first split
    }
  }

  bool shared() const noexcept { return shared_.has_value(); }  ///< true when both sides read one fine-grained SVM copy

  /// Host-side panels (panel 0 first); on non-shared devices valid up to the last cover()ed split + margin.
  const T* host_panels() const noexcept { return shared_ ? shared_->data() : host_.data(); }

  /// The device's operand for the slice starting at column `split` (a multiple of the panel width).
  gpu::device_ptr<const T> device_panels(std::size_t split) const {
    const std::size_t panel = split / panel_width;
    if (shared_) return gpu::device_ptr<const T>(shared_->data(), panel * panel_width * k_);
    return gpu::device_ptr<const T>(device_, (panel - device_begin_) * panel_width * k_);
  }

  /// Makes both sides hold what a split at column `split` needs (no-op on shared devices).
  void cover(std::size_t split) {
    if (shared_) return;
    // The CPU reads panels [0, ceil(split / NR)); the device [split / NR, P). They differ only
    // for split = N with a partial last panel.
    const std::size_t cpu_panels = (split + panel_width - 1) / panel_width, device_first = split / panel_width;
    if (cpu_panels <= host_end_ && device_first >= device_begin_) return;  // both sides hold what they need
    const std::size_t margin = std::max<std::size_t>(4, panels_ / 16);
    const std::size_t want_host = std::min(panels_, cpu_panels + margin);
    const std::size_t want_device = device_first > margin ? device_first - margin : 0;
    const std::size_t panel_elements = panel_width * k_;

    // Grow the host side from the device (the ranges overlap, so the device has these panels).
    if (want_host > host_end_) {
      host_.resize(want_host * panel_elements);
      coexec::detail::check(context_.queue().enqueueReadBuffer(device_, CL_TRUE, (host_end_ - device_begin_) * panel_elements * sizeof(T),
                                                               (want_host - host_end_) * panel_elements * sizeof(T),
                                                               host_.data() + host_end_ * panel_elements),
                            "clEnqueueReadBuffer(weights)");
    }
    // Rebuild the device slice: keep what overlaps, upload the rest from the host.
    cl::Buffer next = gpu::make_buffer<T>(context_, (panels_ - want_device) * panel_elements, CL_MEM_READ_ONLY);
    const std::size_t keep_from = std::max(want_device, device_begin_);
    if (keep_from < panels_ && device_begin_ < panels_)
      coexec::detail::check(context_.queue().enqueueCopyBuffer(device_, next, (keep_from - device_begin_) * panel_elements * sizeof(T),
                                                               (keep_from - want_device) * panel_elements * sizeof(T),
                                                               (panels_ - keep_from) * panel_elements * sizeof(T)),
                            "clEnqueueCopyBuffer(weights)");
    if (want_device < keep_from)
      coexec::detail::check(context_.queue().enqueueWriteBuffer(next, CL_TRUE, 0, (keep_from - want_device) * panel_elements * sizeof(T),
                                                                host_.data() + want_device * panel_elements),
                            "clEnqueueWriteBuffer(weights)");
    context_.finish();
    device_ = next;
    device_begin_ = want_device;
    host_.resize(want_host * panel_elements);
    host_.shrink_to_fit();
    host_end_ = want_host;
  }

  /// Bytes of weights held on both sides together.
  std::size_t bytes() const {
    if (shared_) return shared_->bytes();
    return host_.capacity() * sizeof(T) + (panels_ - device_begin_) * panel_width * k_ * sizeof(T);
  }

 private:
  runtime::context context_;
  std::size_t n_, k_, panels_;
  std::optional<memory::svm_vector<T>> shared_;
  std::vector<T> host_;
  cl::Buffer device_;
  std::size_t host_end_ = 0, device_begin_ = 0;
};

}  // namespace coexec::ops
