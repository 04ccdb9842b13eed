#pragma once
// On-disk cache of built program binaries. Keys include the device name, CL_DRIVER_VERSION and
// the coexec version, so a driver update or a new coexec never loads a stale binary.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "coexec/detail/hash.hpp"
#include "coexec/runtime/capabilities.hpp"

namespace coexec::runtime {

/// On-disk cache of built OpenCL program binaries, keyed by platform, device, driver version,
/// coexec version, build options and source, so rebuilding a program is skipped across runs.
class binary_cache {
 public:
  /// A disabled cache (empty directory) loads nothing and stores nothing.
  explicit binary_cache(std::filesystem::path directory = {}) : directory_(std::move(directory)) {}

  /// COEXEC_CACHE_DIR if set ("off" disables), else $XDG_CACHE_HOME/coexec, else ~/.cache/coexec.
  static std::filesystem::path default_directory() {
    if (const char* dir = std::getenv("COEXEC_CACHE_DIR")) return std::string(dir) == "off" ? "" : dir;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME")) return std::filesystem::path(xdg) / "coexec";
    if (const char* home = std::getenv("HOME")) return std::filesystem::path(home) / ".cache" / "coexec";
    return {};
  }

  bool enabled() const { return !directory_.empty(); }  ///< false for an empty directory: nothing is loaded or stored
  const std::filesystem::path& directory() const { return directory_; }  ///< where binaries are stored (empty when disabled)

  /// The binary stored for this device, source and options, or nullopt (disabled, missing or empty).
  std::optional<std::vector<unsigned char>> load(const capabilities& caps, std::string_view source,
                                                 std::string_view options) const {
    if (!enabled()) return std::nullopt;
    std::ifstream in(path_for(caps, source, options), std::ios::binary);
    if (!in) return std::nullopt;
    std::vector<unsigned char> binary{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (binary.empty()) return std::nullopt;
    return binary;
  }

  /// Best effort: a read-only or full disk only costs a rebuild next time. Written through a
  /// temporary file and a rename so a concurrent reader never sees half a binary.
  void store(const capabilities& caps, std::string_view source, std::string_view options,
             const std::vector<unsigned char>& binary) const {
    if (!enabled() || binary.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    const auto target = path_for(caps, source, options);
    auto temporary = target;
    temporary += ".tmp" + std::to_string(std::random_device{}());
    {
      std::ofstream out(temporary, std::ios::binary);
      if (!out.write(reinterpret_cast<const char*>(binary.data()), static_cast<std::streamsize>(binary.size()))) return;
    }
    std::filesystem::rename(temporary, target, ec);
    if (ec) std::filesystem::remove(temporary, ec);
  }

  /// File that holds the binary for this device, source and options: a 64-bit hash of all of them.
  std::filesystem::path path_for(const capabilities& caps, std::string_view source, std::string_view options) const {
    std::uint64_t key = coexec::detail::fnv1a(caps.platform_name);
    for (std::string_view part : {std::string_view(caps.name), std::string_view(caps.driver_version),
                                  std::string_view(COEXEC_VERSION_STRING), options, source})
      key = coexec::detail::fnv1a(part, key ^ 0x9e3779b97f4a7c15ull);
    char name[32];
    std::snprintf(name, sizeof name, "%016llx.bin", static_cast<unsigned long long>(key));
    return directory_ / name;
  }

 private:
  std::filesystem::path directory_;
};

}  // namespace coexec::runtime
