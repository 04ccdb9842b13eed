#pragma once
// The only place coexec sets OpenCL-CLHPP macros. An engine that already included opencl.hpp
// with its own settings keeps them; coexec needs OpenCL 2.0+ host APIs (SVM) and does not use
// CLHPP exceptions: every status is checked and turned into coexec::error.
#ifndef CL_HPP_TARGET_OPENCL_VERSION
#define CL_HPP_TARGET_OPENCL_VERSION 300
#endif
#ifndef CL_HPP_MINIMUM_OPENCL_VERSION
#define CL_HPP_MINIMUM_OPENCL_VERSION 200
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
#include <CL/opencl.hpp>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define COEXEC_VERSION_STRING "0.1.0"

#include <string>

#include "coexec/error.hpp"

namespace coexec::detail {

/// Throws errc::opencl naming the failed call unless `status` is CL_SUCCESS.
inline void check(cl_int status, const char* what) {
  if (status != CL_SUCCESS)
    throw error(errc::opencl, std::string(what) + " failed with OpenCL status " + std::to_string(status),
                status);
}

}  // namespace coexec::detail
