# Fails when the committed include/coexec/kernels/*.hpp differ from what kernels/*.cl generate.
#   cmake -DSOURCE_DIR=<repo> -DSCRATCH_DIR=<tmp> -P cmake/check_kernels.cmake
file(REMOVE_RECURSE ${SCRATCH_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -DKERNEL_DIR=${SOURCE_DIR}/kernels -DOUTPUT_DIR=${SCRATCH_DIR}
                        -P ${SOURCE_DIR}/cmake/embed_kernels.cmake COMMAND_ERROR_IS_FATAL ANY)
file(GLOB generated RELATIVE ${SCRATCH_DIR} ${SCRATCH_DIR}/*.hpp)
file(GLOB committed RELATIVE ${SOURCE_DIR}/include/coexec/kernels ${SOURCE_DIR}/include/coexec/kernels/*.hpp)
if(NOT "${generated}" STREQUAL "${committed}")
  message(FATAL_ERROR "kernel headers out of date: generated {${generated}} but committed {${committed}}; "
                      "run `cmake --build <build> --target coexec_embed_kernels` and commit")
endif()
foreach(header IN LISTS generated)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${SCRATCH_DIR}/${header}
                          ${SOURCE_DIR}/include/coexec/kernels/${header} RESULT_VARIABLE different)
  if(different)
    message(FATAL_ERROR "include/coexec/kernels/${header} is stale: kernels/*.cl changed since it was generated; "
                        "run `cmake --build <build> --target coexec_embed_kernels` and commit")
  endif()
endforeach()
message(STATUS "kernel headers up to date (${generated})")
