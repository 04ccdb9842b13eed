# `conan create` of the recipe at the repository root, offline, against the system's OpenCL
# (conan/profiles/system), in a private CONAN_HOME. The recipe and test_package are copied to a
# scratch directory first so that nothing (test_package/build, CMakeUserPresets.json) lands in
# the source tree.
#   cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch> -DCONAN=<conan executable or NOTFOUND>
#         -DCXX=<C++ compiler> [-DCC=<C compiler>] -P conan_create.cmake
cmake_minimum_required(VERSION 3.20)
if(NOT CONAN)
  # Installed after the build was configured. A variable of its own: CMake 3.25 does not search
  # again for a variable given on the command line, even as <name>-NOTFOUND.
  find_program(conan_on_path conan)
  set(CONAN ${conan_on_path})
endif()
if(NOT CONAN)
  message(FATAL_ERROR "conan not found on PATH: this test needs Conan 2 (pip install conan; no reconfigure "
                      "needed). It fails rather than skips on purpose.")
endif()
execute_process(COMMAND ${CONAN} --version OUTPUT_VARIABLE version OUTPUT_STRIP_TRAILING_WHITESPACE
                COMMAND_ERROR_IS_FATAL ANY)
if(NOT version MATCHES "Conan version 2\\.")
  message(FATAL_ERROR "${CONAN} is '${version}'; the recipe needs Conan 2")
endif()

set(tree ${WORK_DIR}/recipe)
set(ENV{CONAN_HOME} ${WORK_DIR}/home)
file(REMOVE_RECURSE ${tree} ${WORK_DIR}/home)
file(MAKE_DIRECTORY ${tree})
foreach(item conanfile.py LICENSE include test_package conan)
  file(COPY ${SOURCE_DIR}/${item} DESTINATION ${tree}
       PATTERN build EXCLUDE PATTERN CMakeUserPresets.json EXCLUDE)
endforeach()

# The detected default profile uses this build's compiler.
set(ENV{CXX} ${CXX})
if(CC)
  set(ENV{CC} ${CC})
endif()
execute_process(COMMAND ${CONAN} profile detect --force COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${CONAN} remote disable "*" COMMAND_ERROR_IS_FATAL ANY)  # offline by construction
execute_process(COMMAND ${CONAN} create ${tree} -pr:a ${tree}/conan/profiles/system --build=missing
                        -c tools.build:compiler_executables={\"cpp\":\"${CXX}\"}
                WORKING_DIRECTORY ${WORK_DIR}
                COMMAND_ERROR_IS_FATAL ANY)
