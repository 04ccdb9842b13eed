# Builds a consumer whose CMakeLists.txt is exactly the snippet in ports/coexec/usage (the text
# vcpkg prints after installing coexec), against the vcpkg-style tree of vcpkg_layout.cmake.
#   cmake -DSOURCE_DIR=<repo> -DBINARY=<dir> -DPREFIX=<vcpkg-style installed tree> -DGENERATOR=...
#         -DMAKE_PROGRAM=... -DCXX=... -P usage_consumer.cmake
cmake_minimum_required(VERSION 3.20)
file(STRINGS ${SOURCE_DIR}/ports/coexec/usage snippet REGEX "^[ ]+[a-z_]+\\(")
if(NOT snippet MATCHES "find_package\\(coexec" OR NOT snippet MATCHES "target_link_libraries\\(main")
  message(FATAL_ERROR "ports/coexec/usage no longer shows find_package(coexec ...) and "
                      "target_link_libraries(main ...): '${snippet}'")
endif()
set(project_dir ${BINARY}-src)
file(REMOVE_RECURSE ${project_dir})
file(MAKE_DIRECTORY ${project_dir})
file(COPY_FILE ${CMAKE_CURRENT_LIST_DIR}/consumer/main.cpp ${project_dir}/main.cpp)
set(text "cmake_minimum_required(VERSION 3.20)\nproject(coexec_usage_consumer LANGUAGES CXX)\nadd_executable(main main.cpp)\n")
foreach(line IN LISTS snippet)
  string(STRIP "${line}" line)
  string(APPEND text "${line}\n")
endforeach()
file(WRITE ${project_dir}/CMakeLists.txt "${text}")
message(STATUS "consumer from ports/coexec/usage:\n${text}")

set(SOURCE ${project_dir})
set(EXE main)
include(${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake)
