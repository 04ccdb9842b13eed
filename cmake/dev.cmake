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
# benchmarks only; the library itself never links them.
find_library(COEXEC_OPENBLAS_LIBRARY openblas)
find_path(COEXEC_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas-pthread openblas)
if(COEXEC_OPENBLAS_LIBRARY AND COEXEC_CBLAS_INCLUDE_DIR)
  add_library(coexec_openblas INTERFACE)
  target_link_libraries(coexec_openblas INTERFACE ${COEXEC_OPENBLAS_LIBRARY})
  target_include_directories(coexec_openblas INTERFACE ${COEXEC_CBLAS_INCLUDE_DIR})
  target_compile_definitions(coexec_openblas INTERFACE COEXEC_HAVE_CBLAS=1)
else()
  message(WARNING "OpenBLAS not found: the CBLAS policy test and the openblas benchmark anchors are not built")
endif()
find_library(COEXEC_CLBLAST_LIBRARY clblast)
find_path(COEXEC_CLBLAST_INCLUDE_DIR clblast_c.h)
if(COEXEC_CLBLAST_LIBRARY AND COEXEC_CLBLAST_INCLUDE_DIR)
  add_library(coexec_clblast INTERFACE)
  target_link_libraries(coexec_clblast INTERFACE ${COEXEC_CLBLAST_LIBRARY})
  target_include_directories(coexec_clblast INTERFACE ${COEXEC_CLBLAST_INCLUDE_DIR})
  target_compile_definitions(coexec_clblast INTERFACE COEXEC_HAVE_CLBLAST=1)
else()
  message(WARNING "CLBlast not found: the clblast benchmark anchors are not built")
endif()

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
  add_executable(fuzz_model_file ${PROJECT_SOURCE_DIR}/fuzz/fuzz_model_file.cpp)
  target_link_libraries(fuzz_model_file PRIVATE coexec_dev)
  target_compile_options(fuzz_model_file PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
  target_link_options(fuzz_model_file PRIVATE -fsanitize=fuzzer,address,undefined)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/tools/CMakeLists.txt)
  add_subdirectory(tools)
endif()

include(${PROJECT_SOURCE_DIR}/cmake/docs.cmake)
