# Settings for building coexec's own tests, benchmarks, examples and tools.
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# Regenerates include/coexec/kernels/*.hpp from kernels/*.cl (the committed headers are checked
# for staleness by a test).
file(GLOB COEXEC_KERNEL_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/*.cl)
add_custom_target(coexec_embed_kernels
  COMMAND ${CMAKE_COMMAND} -DKERNEL_DIR=${PROJECT_SOURCE_DIR}/kernels
          -DOUTPUT_DIR=${PROJECT_SOURCE_DIR}/include/coexec/kernels
          -P ${PROJECT_SOURCE_DIR}/cmake/embed_kernels.cmake
  DEPENDS ${COEXEC_KERNEL_SOURCES}
  COMMENT "Embedding kernels/*.cl into include/coexec/kernels")

add_library(coexec_dev INTERFACE)
target_link_libraries(coexec_dev INTERFACE coexec::coexec)
target_compile_options(coexec_dev INTERFACE -Wall -Wextra -Wpedantic)
if(COEXEC_NATIVE)
  target_compile_options(coexec_dev INTERFACE -march=native)
endif()

# Speed anchors and the CBLAS CpuKernel policy: OpenBLAS (cblas.h) and CLBlast, for tests and
# benchmarks only; the library itself never links them. Each becomes an INTERFACE target
# (coexec_<name>) defining COEXEC_HAVE_<DEFINE>=1, or a warning saying what is not built.
function(coexec_find_anchor name library header define missing)
  find_library(COEXEC_${define}_LIBRARY ${library})
  find_path(COEXEC_${define}_INCLUDE_DIR ${header} PATH_SUFFIXES openblas-pthread openblas)
  if(COEXEC_${define}_LIBRARY AND COEXEC_${define}_INCLUDE_DIR)
    add_library(coexec_${name} INTERFACE)
    target_link_libraries(coexec_${name} INTERFACE ${COEXEC_${define}_LIBRARY})
    target_include_directories(coexec_${name} INTERFACE ${COEXEC_${define}_INCLUDE_DIR})
    target_compile_definitions(coexec_${name} INTERFACE COEXEC_HAVE_${define}=1)
  else()
    message(WARNING "${library} not found: ${missing} not built")
  endif()
endfunction()
coexec_find_anchor(openblas openblas cblas.h CBLAS "the CBLAS policy test and the openblas benchmark anchors are")
coexec_find_anchor(clblast clblast clblast_c.h CLBLAST "the clblast benchmark anchors are")

if(COEXEC_BUILD_TESTS)
  enable_testing()
  add_subdirectory(tests)
endif()
if(COEXEC_BUILD_BENCH)
  add_subdirectory(bench)
endif()
if(COEXEC_BUILD_EXAMPLES)
  add_subdirectory(examples)
endif()
option(COEXEC_BUILD_FUZZ "Build the libFuzzer targets (clang only)" OFF)
if(COEXEC_BUILD_FUZZ)
  foreach(target fuzz_model_file fuzz_shapes)
    add_executable(${target} ${PROJECT_SOURCE_DIR}/fuzz/${target}.cpp)
    target_link_libraries(${target} PRIVATE coexec_dev)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
  endforeach()
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/tools/CMakeLists.txt)
  add_subdirectory(tools)
endif()

include(${PROJECT_SOURCE_DIR}/cmake/docs.cmake)
