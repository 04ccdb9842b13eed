# Install rules: headers, the exported INTERFACE target, coexecConfig.cmake and an
# architecture-independent version file (a header-only package fits every architecture).
include(CMakePackageConfigHelpers)

install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS coexec EXPORT coexecTargets)
set(COEXEC_CMAKE_DIR ${CMAKE_INSTALL_DATADIR}/coexec/cmake)
install(EXPORT coexecTargets NAMESPACE coexec:: DESTINATION ${COEXEC_CMAKE_DIR})

configure_package_config_file(cmake/coexecConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/coexecConfig.cmake INSTALL_DESTINATION ${COEXEC_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/coexecConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/coexecConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/coexecConfigVersion.cmake
        DESTINATION ${COEXEC_CMAKE_DIR})
