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
  # ctest -L docs: the API docs build without a warning (only where doxygen was found; a
  # build without doxygen has no such test rather than a failing one).
  add_test(NAME api_docs COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target coexec_docs)
  set_tests_properties(api_docs PROPERTIES LABELS docs)
else()
  add_custom_target(coexec_docs
    COMMAND ${CMAKE_COMMAND} -E echo "coexec_docs: doxygen was not found when CMake configured this build (apt-get install doxygen, then re-run cmake)"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
endif()
