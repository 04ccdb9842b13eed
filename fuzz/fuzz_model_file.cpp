// libFuzzer target for the model-file loaders (include/coexec/predict/model_file.hpp).
// coexec::error is the expected answer to malformed bytes; a crash, a sanitizer report or any
// other exception is a bug. Whatever loads must also predict safely and survive a save/load
// round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "coexec/predict/model_file.hpp"

namespace {

using namespace coexec::predict;

void exercise(const ensemble& e) {
  const std::vector<double> features(e.feature_count, 0.5);
  (void)e.predict(features);
}

template <class Model, class Load>
void check_round_trip(const Model& loaded, Load load) {
  std::stringstream file;
  save(file, loaded);
  if (!(load(file) == loaded)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    std::istringstream in(text);
    const model_set set = load_model_set(in);
    for (const auto& [name, entry] : set.models) exercise(entry.trees);
    check_round_trip(set, [](std::istream& file) { return load_model_set(file); });
  } catch (const coexec::error&) {
  }
  try {
    std::istringstream in(text);
    const ensemble e = load_ensemble(in);
    exercise(e);
    check_round_trip(e, [](std::istream& file) { return load_ensemble(file); });
  } catch (const coexec::error&) {
  }
  return 0;
}
