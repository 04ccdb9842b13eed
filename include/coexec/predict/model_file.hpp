#pragma once
// Text files holding tree ensembles: one ensemble, or a named set of them (the planner's
// "linear/cpu", "linear/gpu", "conv/cpu", "conv/gpu" models with the feature names each takes).
// tools/train_predictor.py writes them.
//
// Format, version 2. Lines hold whitespace-separated tokens; blank lines and lines starting
// with '#' are ignored. Numbers are decimal (floats as std::from_chars reads them, and finite).
//
//   coexec-model 2                                          first line of every file
//   models <count>                                          a set only: then <count> times
//   model <name> <feature_count> <feature_name>...            one model's name and inputs
//   ensemble <tree|forest|boosted> <identity|exp> <base_score> <feature_count> <tree_count>
//   baseline <term_count> <feature|constant> <weight>...    the baseline's terms (0: none)
//   tree <node_count>                                       <tree_count> times, each followed
//   split <feature> <threshold> <left> <right>                by <node_count> node lines:
//   leaf <value>                                              node i is the i-th of them
//
// Version 1 files, without baseline lines, are read as ensembles without a baseline.
// A single-ensemble file is the first line and one `ensemble` block. Fields mean what they do
// in tree_ensemble.hpp: child indices are tree-local and greater than the node's own, so every
// accepted file is a valid() ensemble. Names are printable ASCII without whitespace.
//
// The loader takes untrusted input: every defect (truncation, bad or huge counts, non-finite
// numbers, out-of-range indices, trailing content) throws coexec::error naming the line, with
// errc::io when the stream itself fails and errc::invalid_argument otherwise. Memory use is
// bounded by the input's size and by `model_file_limits`.
#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <istream>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "coexec/error.hpp"
#include "coexec/predict/tree_ensemble.hpp"

namespace coexec::predict {

/// An ensemble and the names of the features it takes, in the order predict() expects them.
struct model {
  std::vector<std::string> features;  ///< feature names, one per ensemble input
  ensemble trees;  ///< the ensemble

  friend bool operator==(const model&, const model&) = default;
};

/// Models by name, e.g. "conv/gpu".
struct model_set {
  std::map<std::string, model, std::less<>> models;  ///< the models, by name

  /// The model called `name`; errc::invalid_argument when there is none.
  const model& at(std::string_view name) const {
    const auto found = models.find(name);
    if (found == models.end())
      throw error(errc::invalid_argument, "model set has no model '" + std::string(name) + "'");
    return found->second;
  }

  friend bool operator==(const model_set&, const model_set&) = default;
};

/// Bounds the loader enforces beyond the input's own size.
struct model_file_limits {
  static constexpr std::size_t max_line_length = 1 << 16;  ///< bytes in one line
  static constexpr std::size_t max_name_length = 128;  ///< bytes in a model or feature name
  static constexpr std::size_t max_models = 256;  ///< models in a set
  static constexpr std::size_t max_features = 1024;  ///< features of one ensemble
  static constexpr std::size_t max_trees = 1 << 14;  ///< trees in one ensemble
  static constexpr std::size_t max_baseline_terms = 1024;  ///< terms of one ensemble's baseline
  static constexpr std::size_t max_tree_nodes = 1 << 16;  ///< nodes in one tree
};

namespace detail {

inline constexpr std::string_view model_file_magic = "coexec-model";
inline constexpr int model_file_version = 2;
inline constexpr int model_file_version_without_baseline = 1;  ///< still read
inline constexpr std::array<std::string_view, 3> ensemble_kind_names{"tree", "forest", "boosted"};
inline constexpr std::array<std::string_view, 2> output_transform_names{"identity", "exp"};
inline constexpr std::string_view baseline_constant_name = "constant";  ///< a constant term's feature in a baseline line

inline bool is_model_file_name(std::string_view name) {
  if (name.empty() || name.size() > model_file_limits::max_name_length) return false;
  for (const char c : name)
    if (c <= ' ' || c > '~') return false;
  return true;
}

/// Reads a model file line by line into tokens and turns every problem into an error that
/// names the source and line.
class model_file_reader {
 public:
  model_file_reader(std::istream& in, std::string source)
      : in_(in), source_(std::move(source)), buffer_(model_file_limits::max_line_length + 1) {}

  [[noreturn]] void fail(std::string_view what, errc code = errc::invalid_argument) const {
    throw error(code, source_ + " line " + std::to_string(line_number_) + ": " + std::string(what));
  }

  /// Tokens of the next line that is neither blank nor a comment; an error at the end of input.
  const std::vector<std::string_view>& next() {
    while (read_line()) {
      split_line();
      if (!tokens_.empty() && tokens_[0][0] != '#') return tokens_;
    }
    fail("unexpected end of input");
  }

  /// The next line, which must be `keyword` and `field_count` more tokens.
  const std::vector<std::string_view>& expect(std::string_view keyword, std::size_t field_count) {
    next();
    if (tokens_[0] != keyword) fail("expected '" + std::string(keyword) + "'");
    if (tokens_.size() != field_count + 1)
      fail("'" + std::string(keyword) + "' takes " + std::to_string(field_count) + " fields");
    return tokens_;
  }

  void expect_end() {
    while (read_line()) {
      split_line();
      if (!tokens_.empty() && tokens_[0][0] != '#') fail("unexpected content after the model");
    }
  }

  template <class Int>
  Int integer(std::string_view token, std::string_view what) const {
    Int value{};
    const auto [end, status] = std::from_chars(token.data(), token.data() + token.size(), value);
    if (status != std::errc{} || end != token.data() + token.size())
      fail(std::string(what) + " is not an integer in range");
    return value;
  }

  std::size_t count(std::string_view token, std::size_t min, std::size_t max,
                    std::string_view what) const {
    const auto value = integer<std::size_t>(token, what);
    if (value < min || value > max)
      fail(std::string(what) + " must be in [" + std::to_string(min) + ", " +
           std::to_string(max) + "]");
    return value;
  }

  template <class Float>
  Float finite(std::string_view token, std::string_view what) const {
    Float value{};
    const auto [end, status] = std::from_chars(token.data(), token.data() + token.size(), value);
    if (status != std::errc{} || end != token.data() + token.size() || !is_finite(value))
      fail(std::string(what) + " is not a finite number");
    return value;
  }

  template <std::size_t N>
  std::size_t one_of(std::string_view token, const std::array<std::string_view, N>& names,
                     std::string_view what) const {
    for (std::size_t i = 0; i < N; ++i)
      if (token == names[i]) return i;
    fail("unknown " + std::string(what) + " '" + std::string(token) + "'");
  }

  std::string name(std::string_view token, std::string_view what) const {
    if (!is_model_file_name(token))
      fail(std::string(what) + " must be 1 to " +
           std::to_string(model_file_limits::max_name_length) +
           " printable characters without whitespace");
    return std::string(token);
  }

 private:
  /// Reads one line into line_; false at the end of input.
  bool read_line() {
    in_.getline(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    if (in_.bad()) fail("read error", errc::io);
    ++line_number_;
    if (in_.fail()) {
      if (in_.eof() && in_.gcount() == 0) return false;
      fail("line is longer than " + std::to_string(model_file_limits::max_line_length) +
           " characters");
    }
    const auto length = static_cast<std::size_t>(in_.gcount()) - (in_.eof() ? 0 : 1);
    line_ = std::string_view(buffer_.data(), length);
    return true;
  }

  void split_line() {
    tokens_.clear();
    constexpr std::string_view blanks = " \t\r";
    for (std::size_t at = line_.find_first_not_of(blanks); at != std::string_view::npos;) {
      const std::size_t end = std::min(line_.find_first_of(blanks, at), line_.size());
      tokens_.push_back(line_.substr(at, end - at));
      at = line_.find_first_not_of(blanks, end);
    }
  }

  std::istream& in_;
  std::string source_;
  std::vector<char> buffer_;
  std::string_view line_;
  std::vector<std::string_view> tokens_;
  std::size_t line_number_ = 0;
};

/// Reads the first line; returns the file's version.
inline int read_model_file_header(model_file_reader& in) {
  const auto& header = in.next();
  if (header.size() != 2 || header[0] != model_file_magic)
    in.fail("not a model file (expected 'coexec-model <version>')");
  const int version = in.integer<int>(header[1], "version");
  if (version != model_file_version && version != model_file_version_without_baseline)
    in.fail("unsupported version (this build reads versions " + std::to_string(model_file_version_without_baseline) +
            " and " + std::to_string(model_file_version) + ")");
  return version;
}

inline std::vector<baseline_term> read_baseline(model_file_reader& in, std::size_t feature_count) {
  const auto& fields = in.next();
  if (fields[0] != "baseline" || fields.size() < 2) in.fail("expected 'baseline <term_count> <feature|constant> <weight>...'");
  const std::size_t count = in.count(fields[1], 0, model_file_limits::max_baseline_terms, "baseline term count");
  if (fields.size() != 2 + 2 * count) in.fail("baseline terms do not match their count");
  std::vector<baseline_term> baseline(count);
  for (std::size_t t = 0; t < count; ++t) {
    const std::string_view feature = fields[2 + 2 * t];
    baseline[t].feature =
        feature == baseline_constant_name ? baseline_term::constant : in.integer<std::int32_t>(feature, "baseline feature");
    baseline[t].weight = in.finite<double>(fields[3 + 2 * t], "baseline weight");
  }
  if (const char* why = baseline_defect(baseline, feature_count)) in.fail(why);
  return baseline;
}

inline node read_node(model_file_reader& in, std::int32_t index, std::int32_t tree_size,
                      std::size_t feature_count) {
  const auto& fields = in.next();
  node n;
  if (fields[0] == "leaf" && fields.size() == 2) {
    n.value = in.finite<float>(fields[1], "leaf value");
  } else if (fields[0] == "split" && fields.size() == 5) {
    n.feature = in.integer<std::int32_t>(fields[1], "split feature");
    if (n.is_leaf()) in.fail("split feature is out of range");  // -1 would read as a leaf
    n.threshold = in.finite<float>(fields[2], "split threshold");
    n.left = in.integer<std::int32_t>(fields[3], "left child");
    n.right = in.integer<std::int32_t>(fields[4], "right child");
  } else {
    in.fail("expected 'leaf <value>' or 'split <feature> <threshold> <left> <right>'");
  }
  if (const char* why = node_defect(n, index, tree_size, feature_count)) in.fail(why);
  return n;
}

/// Reads an `ensemble` block of a file of `version`; a model set passes the feature count its
/// model line declared.
inline ensemble read_ensemble(model_file_reader& in, int version,
                              std::optional<std::size_t> expected_feature_count = std::nullopt) {
  const auto& header = in.expect("ensemble", 5);
  ensemble e;
  e.kind = static_cast<ensemble_kind>(in.one_of(header[1], ensemble_kind_names, "ensemble kind"));
  e.transform =
      static_cast<output_transform>(in.one_of(header[2], output_transform_names, "transform"));
  e.base_score = in.finite<double>(header[3], "base score");
  e.feature_count = in.count(header[4], 0, model_file_limits::max_features, "feature count");
  if (expected_feature_count && e.feature_count != *expected_feature_count)
    in.fail("feature count differs from the model's feature names");
  const std::size_t tree_count = in.count(header[5], 1, model_file_limits::max_trees, "tree count");
  if (e.kind == ensemble_kind::tree && tree_count != 1) in.fail("a single tree needs tree count 1");
  if (version != model_file_version_without_baseline) e.baseline = read_baseline(in, e.feature_count);

  for (std::size_t t = 0; t < tree_count; ++t) {
    const auto size = static_cast<std::int32_t>(
        in.count(in.expect("tree", 1)[1], 1, model_file_limits::max_tree_nodes, "node count"));
    e.roots.push_back(static_cast<std::int32_t>(e.nodes.size()));
    for (std::int32_t i = 0; i < size; ++i)
      e.nodes.push_back(read_node(in, i, size, e.feature_count));
  }
  assert(e.valid());
  return e;
}

inline void require_savable(const ensemble& e, std::string_view what) {
  if (const char* why = e.view().defect())
    throw error(errc::invalid_argument, "cannot save " + std::string(what) + ": " + why);
}

inline void require_savable(const model_set& set) {
  for (const auto& [name, entry] : set.models) {
    require(is_model_file_name(name), "model name '" + name + "' cannot be saved");
    for (const std::string& feature : entry.features)
      require(is_model_file_name(feature), "feature name '" + feature + "' cannot be saved");
    require(entry.features.size() == entry.trees.feature_count,
            "model '" + name + "' has " + std::to_string(entry.features.size()) +
                " feature names for " + std::to_string(entry.trees.feature_count) + " features");
    require_savable(entry.trees, "model '" + name + "'");
  }
}

/// A float or double streamed in its shortest round-trip spelling, whatever the stream's
/// locale and precision.
template <class Float>
struct shortest {
  explicit shortest(Float number) : value(number) {}  // for CTAD before clang 17
  Float value;
};

template <class Float>
std::ostream& operator<<(std::ostream& out, shortest<Float> number) {
  std::array<char, 32> text{};
  const auto result = std::to_chars(text.data(), text.data() + text.size(), number.value);
  return out.write(text.data(), result.ptr - text.data());
}

inline void write_ensemble(std::ostream& out, const ensemble& e) {
  out << "ensemble " << ensemble_kind_names[static_cast<std::size_t>(e.kind)] << ' '
      << output_transform_names[static_cast<std::size_t>(e.transform)] << ' '
      << shortest{e.base_score} << ' ' << e.feature_count << ' ' << e.roots.size() << '\n';
  out << "baseline " << e.baseline.size();
  for (const baseline_term& term : e.baseline) {
    out << ' ';
    if (term.feature == baseline_term::constant)
      out << baseline_constant_name;
    else
      out << term.feature;
    out << ' ' << shortest{term.weight};
  }
  out << '\n';
  for (std::size_t t = 0; t < e.roots.size(); ++t) {
    const std::span<const node> tree = e.view().tree(t);
    out << "tree " << tree.size() << '\n';
    for (const node& n : tree) {
      if (n.is_leaf()) {
        out << "leaf " << shortest{n.value} << '\n';
      } else {
        out << "split " << n.feature << ' ' << shortest{n.threshold} << ' ' << n.left << ' '
            << n.right << '\n';
      }
    }
  }
}

inline void write_model_file_header(std::ostream& out) {
  out << model_file_magic << ' ' << model_file_version << '\n';
}

inline void check_written(std::ostream& out) {
  if (!out.flush()) throw error(errc::io, "writing the model file failed");
}

inline std::ifstream open_model_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error(errc::io, "cannot open model file '" + path.string() + "'");
  return in;
}

inline std::ofstream create_model_file(const std::filesystem::path& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw error(errc::io, "cannot create model file '" + path.string() + "'");
  return out;
}

}  // namespace detail

/// Reads a single-ensemble file. `source` names the input in error messages.
inline ensemble load_ensemble(std::istream& in, std::string source = "model file") {
  detail::model_file_reader reader(in, std::move(source));
  const int version = detail::read_model_file_header(reader);
  ensemble e = detail::read_ensemble(reader, version);
  reader.expect_end();
  return e;
}

/// Reads a model-set file.
inline model_set load_model_set(std::istream& in, std::string source = "model file") {
  detail::model_file_reader reader(in, std::move(source));
  const int version = detail::read_model_file_header(reader);
  const std::size_t count =
      reader.count(reader.expect("models", 1)[1], 0, model_file_limits::max_models, "model count");
  model_set set;
  for (std::size_t m = 0; m < count; ++m) {
    const auto& fields = reader.next();
    if (fields[0] != "model" || fields.size() < 3)
      reader.fail("expected 'model <name> <feature_count> <feature_name>...'");
    std::string name = reader.name(fields[1], "model name");
    const std::size_t feature_count =
        reader.count(fields[2], 0, model_file_limits::max_features, "feature count");
    if (fields.size() != 3 + feature_count) reader.fail("feature names do not match their count");
    model entry;
    for (std::size_t f = 0; f < feature_count; ++f)
      entry.features.push_back(reader.name(fields[3 + f], "feature name"));
    if (set.models.contains(name)) reader.fail("duplicate model name '" + name + "'");

    entry.trees = detail::read_ensemble(reader, version, feature_count);
    set.models.emplace(std::move(name), std::move(entry));
  }
  reader.expect_end();
  return set;
}

/// Reads a single-ensemble file; errc::io when it cannot be opened.
inline ensemble load_ensemble(const std::filesystem::path& path) {
  std::ifstream in = detail::open_model_file(path);
  return load_ensemble(in, "model file '" + path.string() + "'");
}

/// Reads a model-set file; errc::io when it cannot be opened.
inline model_set load_model_set(const std::filesystem::path& path) {
  std::ifstream in = detail::open_model_file(path);
  return load_model_set(in, "model file '" + path.string() + "'");
}

/// Writes `e` as a single-ensemble file; errc::invalid_argument unless e.valid().
inline void save(std::ostream& out, const ensemble& e) {
  detail::require_savable(e, "an invalid ensemble");
  detail::write_model_file_header(out);
  detail::write_ensemble(out, e);
  detail::check_written(out);
}

/// Writes `set` as a model-set file; errc::invalid_argument, before writing anything, for an
/// invalid ensemble, a bad name, or feature names that do not match their ensemble.
inline void save(std::ostream& out, const model_set& set) {
  detail::require_savable(set);
  detail::write_model_file_header(out);
  out << "models " << set.models.size() << '\n';
  for (const auto& [name, entry] : set.models) {
    out << "model " << name << ' ' << entry.features.size();
    for (const std::string& feature : entry.features) out << ' ' << feature;
    out << '\n';
    detail::write_ensemble(out, entry.trees);
  }
  detail::check_written(out);
}

/// Writes `e` to the file `path` as a single-ensemble file; errc::io when it cannot be created.
inline void save(const std::filesystem::path& path, const ensemble& e) {
  std::ofstream out = detail::create_model_file(path);
  save(out, e);
}

/// Writes `set` to the file `path` as a model-set file; errc::io when it cannot be created.
inline void save(const std::filesystem::path& path, const model_set& set) {
  std::ofstream out = detail::create_model_file(path);
  save(out, set);
}

}  // namespace coexec::predict
