# Configures, builds and runs one consumer project from scratch.
#   cmake -DSOURCE=<consumer dir> -DBINARY=<build dir> -DGENERATOR=<gen> -DMAKE_PROGRAM=<prog>
#         -DCXX=<compiler> [-DPREFIX=<install prefix, checked against coexec_DIR>]
#         [-DINSTALL_FROM=<coexec build tree to `cmake --install` into PREFIX first> [-DCONFIG=<cfg>]]
#         [-DARGS=<;-list of extra -D arguments>] [-DEXE=<executable, default consumer>]
#         -P run_consumer.cmake
cmake_minimum_required(VERSION 3.20)
foreach(required SOURCE BINARY GENERATOR CXX)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "run_consumer.cmake: -D${required}= is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${BINARY})
if(INSTALL_FROM)
  file(REMOVE_RECURSE ${PREFIX})
  set(install ${CMAKE_COMMAND} --install ${INSTALL_FROM} --prefix ${PREFIX})
  if(CONFIG)
    list(APPEND install --config ${CONFIG})
  endif()
  execute_process(COMMAND ${install} COMMAND_ERROR_IS_FATAL ANY)
endif()
set(configure ${CMAKE_COMMAND} -S ${SOURCE} -B ${BINARY} -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
if(MAKE_PROGRAM)
  list(APPEND configure -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(PREFIX)
  list(APPEND configure -DCMAKE_PREFIX_PATH=${PREFIX})
endif()
list(APPEND configure ${ARGS})

message(STATUS "configure: ${configure}")
execute_process(COMMAND ${configure} COMMAND_ERROR_IS_FATAL ANY)
if(PREFIX)
  # The package must come from the prefix under test, not from some other installation.
  file(STRINGS ${BINARY}/CMakeCache.txt coexec_dir REGEX "^coexec_DIR:")
  string(REGEX REPLACE "^coexec_DIR:[A-Z]+=" "" coexec_dir "${coexec_dir}")
  file(REAL_PATH "${PREFIX}" prefix_real)
  file(REAL_PATH "${coexec_dir}" coexec_dir_real)
  string(FIND "${coexec_dir_real}" "${prefix_real}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "coexec was found at '${coexec_dir}', not under the prefix under test '${PREFIX}'")
  endif()
  message(STATUS "coexec_DIR = ${coexec_dir}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY} COMMAND_ERROR_IS_FATAL ANY)
if(NOT EXE)
  set(EXE consumer)
endif()
execute_process(COMMAND ${BINARY}/${EXE} COMMAND_ERROR_IS_FATAL ANY)
