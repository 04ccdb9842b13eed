# vcpkg port for coexec (header-only).
#
# Overlay use from a checkout (the default): this directory is <repo>/ports/coexec, so the
# sources are two levels up and nothing is downloaded:
#   vcpkg install coexec --overlay-ports=<repo>/ports
#   (manifest mode: "dependencies": ["coexec"] plus
#    "vcpkg-configuration": { "overlay-ports": ["<repo>/ports"] } in vcpkg-configuration.json)
# vcpkg's binary cache keys on the port files, not on the checkout's contents: after changing
# the sources, `vcpkg remove coexec` (classic mode) or disable binary caching for the install
# (VCPKG_BINARY_SOURCES=clear) so the new headers are picked up.
#
# Registry use (a copy of this directory outside the repository): set COEXEC_GIT_URL and
# COEXEC_GIT_REF below to the published repository and the commit of the release, then
# vcpkg_from_git fetches that commit.
set(COEXEC_GIT_URL "")  # e.g. https://<host>/<owner>/coexec.git
set(COEXEC_GIT_REF "")  # the full 40-hex commit of tag v${VERSION}

get_filename_component(COEXEC_CHECKOUT "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
if(EXISTS "${COEXEC_CHECKOUT}/include/coexec/config.hpp" AND EXISTS "${COEXEC_CHECKOUT}/cmake/install.cmake")
  set(SOURCE_PATH "${COEXEC_CHECKOUT}")
elseif(COEXEC_GIT_URL AND COEXEC_GIT_REF)
  vcpkg_from_git(
    OUT_SOURCE_PATH SOURCE_PATH
    URL "${COEXEC_GIT_URL}"
    REF "${COEXEC_GIT_REF}"
  )
else()
  message(FATAL_ERROR "coexec: not inside a coexec checkout and COEXEC_GIT_URL / COEXEC_GIT_REF are unset in ${CMAKE_CURRENT_LIST_FILE}")
endif()

# Header-only: one (release) configuration is enough, and nothing is compiled.
set(VCPKG_BUILD_TYPE release)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DCOEXEC_BUILD_TESTS=OFF
    -DCOEXEC_BUILD_BENCH=OFF
    -DCOEXEC_BUILD_EXAMPLES=OFF
    -DCOEXEC_BUILD_FUZZ=OFF
    -DCOEXEC_NATIVE=OFF
)
vcpkg_cmake_install()
# coexec installs its config to share/coexec/cmake; vcpkg wants it in share/coexec.
vcpkg_cmake_config_fixup(CONFIG_PATH share/coexec/cmake)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")

vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
