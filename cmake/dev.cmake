# Settings for building coexec's own tests, benchmarks, examples and tools.
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

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
if(EXISTS ${PROJECT_SOURCE_DIR}/tools/CMakeLists.txt)
  add_subdirectory(tools)
endif()
