# Stands in for `vcpkg install coexec --overlay-ports=<repo>/ports` (vcpkg cannot be fetched in
# the test environment): performs what ports/coexec/portfile.cmake asks vcpkg to do and lays the
# result out as vcpkg's installed tree would.
#   cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch> -DGENERATOR=<gen> -DMAKE_PROGRAM=<prog>
#         -DCXX=<compiler> -P vcpkg_layout.cmake
# Result: ${WORK_DIR}/installed (use as CMAKE_PREFIX_PATH, as vcpkg's toolchain file does).
cmake_minimum_required(VERSION 3.20)
set(build ${WORK_DIR}/buildtree)
set(installed ${WORK_DIR}/installed)
file(REMOVE_RECURSE ${build} ${installed})

# The options vcpkg_cmake_configure passes in the portfile.
file(STRINGS ${SOURCE_DIR}/ports/coexec/portfile.cmake port_options REGEX "^ +-DCOEXEC_[A-Z_]+=")
string(STRIP "${port_options}" port_options)
string(REGEX REPLACE ";[ ]+" ";" port_options "${port_options}")
if(NOT port_options MATCHES "COEXEC_BUILD_TESTS=OFF")
  message(FATAL_ERROR "could not read the vcpkg_cmake_configure OPTIONS from portfile.cmake: '${port_options}'")
endif()
message(STATUS "portfile options: ${port_options}")

set(configure ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${build} -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=${installed} ${port_options})
if(MAKE_PROGRAM)
  list(APPEND configure -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
execute_process(COMMAND ${configure} COMMAND_ERROR_IS_FATAL ANY)           # vcpkg_cmake_configure
execute_process(COMMAND ${CMAKE_COMMAND} --build ${build} --target install  # vcpkg_cmake_install
                COMMAND_ERROR_IS_FATAL ANY)

# vcpkg_cmake_config_fixup(CONFIG_PATH share/coexec/cmake): move the config one level up and
# make its prefix computations one level shorter.
set(from ${installed}/share/coexec/cmake)
set(to ${installed}/share/coexec)
if(NOT EXISTS ${from}/coexecConfig.cmake)
  message(FATAL_ERROR "the install did not produce share/coexec/cmake/coexecConfig.cmake, which the portfile's "
                      "vcpkg_cmake_config_fixup(CONFIG_PATH share/coexec/cmake) expects")
endif()
file(GLOB config_files RELATIVE ${from} ${from}/*.cmake)
set(up "get_filename_component(_IMPORT_PREFIX \"\${_IMPORT_PREFIX}\" PATH)\n")
foreach(name IN LISTS config_files)
  file(READ ${from}/${name} text)
  # coexecTargets.cmake: three steps up from share/coexec/cmake become two from share/coexec.
  string(FIND "${text}" "${up}" first)
  if(first GREATER_EQUAL 0)
    string(FIND "${text}" "${up}${up}${up}${up}" four)
    if(four GREATER_EQUAL 0)
      message(FATAL_ERROR "${name}: more _IMPORT_PREFIX steps than share/coexec/cmake needs")
    endif()
    string(REPLACE "${up}${up}${up}" "${up}${up}" text "${text}")
  endif()
  # coexecConfig.cmake (configure_package_config_file): PACKAGE_PREFIX_DIR.
  string(REPLACE "\${CMAKE_CURRENT_LIST_DIR}/../../../" "\${CMAKE_CURRENT_LIST_DIR}/../../" text "${text}")
  file(WRITE ${to}/${name} "${text}")
endforeach()
file(REMOVE_RECURSE ${from} ${installed}/lib ${installed}/debug)
# vcpkg_install_copyright and the usage file.
file(COPY_FILE ${SOURCE_DIR}/LICENSE ${to}/copyright)
file(COPY_FILE ${SOURCE_DIR}/ports/coexec/usage ${to}/usage)
message(STATUS "vcpkg-style tree in ${installed}")
