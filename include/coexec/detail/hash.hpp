#pragma once
// FNV-1a: a stable 64-bit hash for cache keys (std::hash is not stable across runs or builds).
#include <cstdint>
#include <string_view>

namespace coexec::detail {

constexpr std::uint64_t fnv1a(std::string_view text, std::uint64_t seed = 0xcbf29ce484222325ull) {
  std::uint64_t hash = seed;
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

}  // namespace coexec::detail
