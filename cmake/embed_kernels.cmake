# Generates one header per kernels/<name>.cl: include/coexec/kernels/<name>.hpp with
#   namespace coexec::kernels { const std::string& <name>(); }
# The source is split at line boundaries into raw string literals below 16 KB each, because
# MSVC rejects longer literals. Usage:
#   cmake -DKERNEL_DIR=kernels -DOUTPUT_DIR=include/coexec/kernels -P cmake/embed_kernels.cmake
cmake_minimum_required(VERSION 3.20)
set(chunk_limit 15000)
file(GLOB sources ${KERNEL_DIR}/*.cl)
file(MAKE_DIRECTORY ${OUTPUT_DIR})
foreach(source IN LISTS sources)
  get_filename_component(name ${source} NAME_WE)
  file(READ ${source} text)
  set(parts "")
  string(LENGTH "${text}" remaining)
  while(remaining GREATER 0)
    if(remaining GREATER chunk_limit)
      string(SUBSTRING "${text}" 0 ${chunk_limit} head)
      string(FIND "${head}" "\n" cut REVERSE)
      math(EXPR cut "${cut} + 1")
    else()
      set(cut ${remaining})
    endif()
    string(SUBSTRING "${text}" 0 ${cut} chunk)
    string(SUBSTRING "${text}" ${cut} -1 text)
    string(APPEND parts "      R\"coexec_cl(${chunk})coexec_cl\",\n")
    string(LENGTH "${text}" remaining)
  endwhile()
  file(WRITE ${OUTPUT_DIR}/${name}.hpp
"#pragma once
// GENERATED from kernels/${name}.cl by cmake/embed_kernels.cmake; edit the .cl file instead.
#include <string>

namespace coexec::kernels {

inline const std::string& ${name}() {
  static const std::string source = [] {
    const char* parts[] = {
${parts}    };
    std::string joined;
    for (const char* part : parts) joined += part;
    return joined;
  }();
  return source;
}

}  // namespace coexec::kernels
")
endforeach()
