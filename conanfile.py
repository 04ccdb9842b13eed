"""Conan 2 recipe for coexec, a header-only library.

package() copies the headers and the licence; it runs no CMake. Consumers get their CMake
config (find_package(coexec) -> coexec::coexec) from Conan's CMakeDeps, built from
package_info() below, so coexec's own coexecConfig.cmake is not needed in the package.

Offline / system OpenCL (Debian's opencl-clhpp-headers and ocl-icd-opencl-dev):
    conan create . -pr:a conan/profiles/system --build=missing
The profile lists the two OpenCL requirements under [platform_requires]; package_info() then
links the system's libOpenCL itself, since a platform requirement brings no cpp_info.
"""
import os

from conan import ConanFile
from conan.tools.files import copy

required_conan_version = ">=2.0.5"


class CoexecConan(ConanFile):
    name = "coexec"
    version = "0.1.0"
    description = "CPU-GPU co-execution of DNN layers over OpenCL (header-only, C++20)"
    license = "MIT"
    topics = ("opencl", "dnn", "heterogeneous-computing", "svm", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    no_copy_source = True
    exports_sources = "include/*", "LICENSE"

    OPENCL_VERSION = "2023.02.06"

    def requirements(self):
        # coexec's public headers include <CL/opencl.hpp>, so consumers need the headers too.
        self.requires(f"opencl-clhpp-headers/{self.OPENCL_VERSION}", transitive_headers=True)
        self.requires(f"opencl-icd-loader/{self.OPENCL_VERSION}")

    def package_id(self):
        self.info.clear()

    def validate(self):
        from conan.tools.build import check_min_cppstd

        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 20)

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "coexec")
        self.cpp_info.set_property("cmake_target_name", "coexec::coexec")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs.append("pthread")
        try:
            self.dependencies["opencl-icd-loader"]
        except KeyError:
            # Under [platform_requires] the loader is the system's and is no dependency of the
            # graph (no cpp_info, no CMake target): link it by name.
            self.cpp_info.system_libs.append("OpenCL")
