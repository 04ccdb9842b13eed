#pragma once
// coexec::error — the one exception type the library throws. It carries a code saying what
// kind of failure happened and, for OpenCL failures, the raw status.
#include <stdexcept>
#include <string>

namespace coexec {

/// What kind of failure an error reports; see error::code().
enum class errc {
  no_platform,       ///< the ICD loader found no OpenCL platform
  no_device,         ///< no device matched the selection
  invalid_argument,  ///< a shape, size, pointer or option is wrong
  unsupported,       ///< the device lacks a capability the call needs
  build_failure,     ///< an OpenCL program failed to build (message carries the build log)
  opencl,            ///< an OpenCL call failed
  timeout,           ///< a wait reached its deadline
  aborted,           ///< a wait was aborted on purpose
  out_of_memory,     ///< an allocation failed
  io,                ///< a file could not be read or written
};

/// Name of an error code, for messages and logs.
constexpr const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::no_platform: return "no_platform";
    case errc::no_device: return "no_device";
    case errc::invalid_argument: return "invalid_argument";
    case errc::unsupported: return "unsupported";
    case errc::build_failure: return "build_failure";
    case errc::opencl: return "opencl";
    case errc::timeout: return "timeout";
    case errc::aborted: return "aborted";
    case errc::out_of_memory: return "out_of_memory";
    case errc::io: return "io";
  }
  return "unknown";
}

/// The exception coexec throws. `code()` says what went wrong; `cl_status()` is the OpenCL
/// status for errc::opencl / errc::build_failure (0 otherwise).
class error : public std::runtime_error {
 public:
  /// Builds the exception; the message gets a "coexec: " prefix. `cl_status` is the raw OpenCL status, if any.
  error(errc code, const std::string& message, int cl_status = 0)
      : std::runtime_error(std::string("coexec: ") + message), code_(code), cl_status_(cl_status) {}

  errc code() const noexcept { return code_; }  ///< what kind of failure this is
  int cl_status() const noexcept { return cl_status_; }  ///< raw OpenCL status for errc::opencl / errc::build_failure, else 0

 private:
  errc code_;
  int cl_status_;
};

/// Throws errc::invalid_argument with `message` unless `condition` holds.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw error(errc::invalid_argument, message);
}

}  // namespace coexec
