#pragma once
// Split points: where the output channels [0, N) are cut between the CPU ([0, split)) and the
// device ([split, N)). Every candidate is a multiple of the granule (the panel width, so both
// sides read the same packed weights), plus N itself.
#include <cstddef>
#include <vector>

namespace coexec::plan {

/// All aligned split points of N: 0, g, 2g, ..., and N.
inline std::vector<std::size_t> aligned_splits(std::size_t n, std::size_t granule) {
  std::vector<std::size_t> splits;
  for (std::size_t s = 0; s < n; s += granule) splits.push_back(s);
  splits.push_back(n);
  return splits;
}

}  // namespace coexec::plan
