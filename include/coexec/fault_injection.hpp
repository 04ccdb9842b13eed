#pragma once
// Fault injection for tests: makes chosen OpenCL calls inside coexec fail, so the error and
// fallback paths run on a healthy device. The call sites ask fault_injected(point); unless
// COEXEC_FAULT_INJECTION is defined that is a constexpr false and the check compiles away, so
// production code pays nothing. Define the macro for the whole program (a test executable),
// never for part of it: the headers must read the same in every translation unit. The names
// live in namespace coexec, not in a `testing` namespace, which would clash with GoogleTest's
// ::testing wherever `using namespace coexec` is in effect.
//
//   fault::program_build  context::program: building fails (CL_BUILD_PROGRAM_FAILURE ->
//                         errc::build_failure), for source and cached binaries alike
//   fault::enqueue        kernel launches in gpu::gemm_launcher / gpu::conv_launcher fail
//                         (CL_OUT_OF_RESOURCES -> errc::opencl)
//   fault::map            memory::map_guard's clEnqueueSVMMap fails (CL_MAP_FAILURE -> errc::opencl)
//   fault::svm_alloc      svm_allocator::allocate gets no memory (errc::out_of_memory)
//   fault::no_signal      the launch runs, but its completion never reaches the host:
//                         sync::completion::wait sees neither the SVM counter nor the event, so
//                         it ends in errc::timeout
#include <atomic>

namespace coexec {

/// A place in coexec where a test can make an OpenCL call fail; see the file comment.
enum class fault : unsigned {
  program_build,  ///< program builds fail
  enqueue,        ///< kernel launches fail
  map,            ///< SVM maps fail
  svm_alloc,      ///< SVM allocations fail
  no_signal,      ///< launches complete without the host ever learning it
};

#ifdef COEXEC_FAULT_INJECTION

namespace detail {
inline std::atomic<unsigned> armed_faults{0};  // one bit per fault, process-wide
constexpr unsigned fault_bit(fault point) noexcept { return 1u << static_cast<unsigned>(point); }
}  // namespace detail

/// True while `point` is armed: the call site then fails as the file comment says.
inline bool fault_injected(fault point) noexcept {
  return (detail::armed_faults.load(std::memory_order_relaxed) & detail::fault_bit(point)) != 0;
}

/// Arms one fault point for its lifetime (process-wide, every thread). Not nestable per point:
/// arm each point from one scope at a time.
class scoped_fault {
 public:
  /// Arms `point`.
  explicit scoped_fault(fault point) noexcept : point_(point) { detail::armed_faults.fetch_or(detail::fault_bit(point)); }
  ~scoped_fault() { detail::armed_faults.fetch_and(~detail::fault_bit(point_)); }  ///< disarms the point
  scoped_fault(const scoped_fault&) = delete;
  scoped_fault& operator=(const scoped_fault&) = delete;

 private:
  fault point_;
};

#else

/// Always false: fault injection is compiled out (define COEXEC_FAULT_INJECTION to enable it).
constexpr bool fault_injected(fault) noexcept { return false; }

#endif

}  // namespace coexec
