# coexec_docs: API documentation of include/coexec with doxygen (Doxyfile.in), failing on any
# warning, undocumented public names included. Not part of `all`:
#   cmake --build <build> --target coexec_docs   ->  <build>/docs/html/index.html
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  set(COEXEC_DOCS_OUTPUT_DIR ${PROJECT_BINARY_DIR}/docs)
  configure_file(${PROJECT_SOURCE_DIR}/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
  add_custom_target(coexec_docs
    COMMAND ${CMAKE_COMMAND} -E make_directory ${COEXEC_DOCS_OUTPUT_DIR}
    COMMAND Doxygen::doxygen ${PROJECT_BINARY_DIR}/Doxyfile
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "Generating API documentation in ${COEXEC_DOCS_OUTPUT_DIR}/html"
    VERBATIM)
else()
  add_custom_target(coexec_docs
    COMMAND ${CMAKE_COMMAND} -E echo "coexec_docs: doxygen was not found when CMake configured this build (apt-get install doxygen, then re-run cmake)"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
endif()
