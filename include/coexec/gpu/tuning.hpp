#pragma once
// Choosing device kernels: for the GEMM, built-in defaults per device family and shape class,
// refined by the problem's size (no tuning needed); for conv layers, the launcher's own choice by device and layer size. An
// optional tuner times a few candidates on the device (per shape class for the GEMM, per layer
// shape for conv), keeps the fastest in memory and in a small text file next to the binary cache.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "coexec/detail/hash.hpp"
#include "coexec/gpu/conv.hpp"
#include "coexec/gpu/gemm.hpp"
#include "coexec/runtime/binary_cache.hpp"

namespace coexec::gpu {

/// Rows decide the kernel: few rows are memory bound (gemv), many are compute bound.
enum class shape_class { gemv, small_m, large_m };

/// Name of a shape class, for logs and the tuning file.
constexpr const char* to_string(shape_class c) noexcept {
  switch (c) {
    case shape_class::gemv: return "gemv";
    case shape_class::small_m: return "small_m";
    case shape_class::large_m: return "large_m";
  }
  return "unknown";
}

/// The shape class of a problem with `m` rows: up to 8 gemv, up to 64 small_m, else large_m.
constexpr shape_class classify(std::size_t m) noexcept {
  return m <= 8 ? shape_class::gemv : m <= 64 ? shape_class::small_m : shape_class::large_m;
}

/// A problem the tuner times for `c`: BERT-like widths, small enough for a few seconds of tuning.
constexpr gemm_shape representative_shape(shape_class c) noexcept {
  switch (c) {
    case shape_class::gemv: return {1, 2048, 2048};
    case shape_class::small_m: return {16, 1536, 768};
    case shape_class::large_m: return {128, 1024, 768};
  }
  return {};
}

/// Device kinds with their own default gemm configs.
enum class device_family { nvidia, amd, intel_gpu, adreno, mali, cpu, unknown };

/// The family of a device, from its type, vendor and name.
inline device_family classify(const runtime::capabilities& caps) {
  const auto has = [](const std::string& text, const char* word) { return text.find(word) != std::string::npos; };
  if (caps.is_cpu) return device_family::cpu;
  if (caps.is_nvidia()) return device_family::nvidia;
  if (has(caps.vendor, "Advanced Micro Devices") || has(caps.vendor, "AMD")) return device_family::amd;
  if (has(caps.vendor, "Intel") && caps.is_gpu) return device_family::intel_gpu;
  if (has(caps.vendor, "QUALCOMM") || has(caps.name, "Adreno")) return device_family::adreno;
  if (has(caps.vendor, "ARM") || has(caps.name, "Mali")) return device_family::mali;
  return device_family::unknown;
}

namespace detail {

/// Configs in the order the tuner tries them; the first is the untuned default. Widths are
/// written for float (panel of 16) and scaled to the panel width of T.
template <class T>
std::vector<gemm_config> candidate_list(device_family family, bool local_is_global, shape_class c) {
  constexpr unsigned nr = memory::panel_width<T>;      // 16 float, 8 double
  constexpr unsigned half = nr / 2, quarter = nr / 4;  // vector widths within a panel
  const bool cpu_like = family == device_family::cpu || family == device_family::mali ||
                        (family == device_family::unknown && local_is_global);
  if (cpu_like) {
    // A work-item is a CPU micro-kernel: micro_m rows x one vector of the panel.
    const unsigned vw = family == device_family::mali ? quarter : nr;
    if (c == shape_class::gemv)
      return {gemm_config::gemv(8, nr, vw, 1), gemm_config::gemv(8, nr, half, 1),
              gemm_config::register_blocked(8, 2 * nr, 8, vw)};
    if (c == shape_class::small_m)
      return {gemm_config::register_blocked(16, 2 * nr, 4, vw), gemm_config::register_blocked(18, 2 * nr, 6, vw),
              gemm_config::register_blocked(16, 4 * nr, 8, half), gemm_config::register_blocked(16, nr, 4, vw)};
    return {gemm_config::register_blocked(48, 4 * nr, 6, vw), gemm_config::register_blocked(24, 2 * nr, 6, vw),
            gemm_config::register_blocked(64, 4 * nr, 4, vw), gemm_config::register_blocked(96, 2 * nr, 8, half),
            gemm_config::register_blocked(64, 4 * nr, 8, half)};
  }
  if (c == shape_class::gemv) {
    const unsigned split = family == device_family::adreno ? 16 : 64;
    return {gemm_config::gemv(8, nr, 4, split), gemm_config::gemv(8, nr, 4, split * 2),
            gemm_config::gemv(8, nr, 2, split), gemm_config::gemv(8, nr, 4, split / 2)};
  }
  // On NVIDIA (H100, measured) the gemv kernel streams each panel once per 8 rows and beats
  // the local-memory tiles up to M = 128: 42 us vs 91 us (tuned local) and 49 us (CLBlast) at
  // 128x768x768. Other GPUs try it too, after their local-memory default. Larger M tries larger
  // tiles too: 32 outputs per work-item in 64x64 and 32x64 tiles, 192 or 96 groups at M = 128.
  if (family == device_family::nvidia) {
    std::vector<gemm_config> list{gemm_config::gemv(8, nr, 4, 64), gemm_config::gemv(8, nr, 4, 32),
                                  gemm_config::local(32, 2 * nr, 32, 4, 4, 4), gemm_config::local(16, 2 * nr, 16, 1, 4, 4)};
    if (c == shape_class::large_m)
      list.insert(list.end(), {gemm_config::local(64, 4 * nr, 16, 4, 8, 4), gemm_config::local(32, 4 * nr, 16, 4, 8, 4),
                               gemm_config::local(64, 2 * nr, 32, 4, 4, 4)});
    return list;
  }
  if (family == device_family::adreno)  // 64-work-item groups, modest local memory
    return {gemm_config::local(32, 2 * nr, 8, 4, 4, 4), gemm_config::local(16, 2 * nr, 16, 2, 4, 4),
            gemm_config::local(32, 4 * nr, 8, 4, 8, 4)};
  if (c == shape_class::small_m)  // few row tiles: small column tiles keep every compute unit busy
    return {gemm_config::local(16, 2 * nr, 32, 2, 4, 4), gemm_config::local(16, 4 * nr, 16, 2, 8, 4),
            gemm_config::local(32, 2 * nr, 16, 4, 4, 4), gemm_config::local(16, 2 * nr, 16, 1, 4, 4)};
  return {gemm_config::local(64, 4 * nr, 16, 4, 8, 4), gemm_config::local(32, 4 * nr, 16, 4, 8, 4),
          gemm_config::local(64, 8 * nr, 16, 8, 8, 4), gemm_config::local(32, 2 * nr, 32, 4, 4, 4),
          gemm_config::local(64, 4 * nr, 32, 8, 8, 4), gemm_config::gemv(8, nr, 4, 64)};
}

}  // namespace detail

/// The candidates the tuner times on `caps` for `c`, those the device cannot run left out;
/// the first is default_config.
template <class T>
std::vector<gemm_config> candidates(const runtime::capabilities& caps, shape_class c) {
  std::vector<gemm_config> valid;
  for (const gemm_config& config : detail::candidate_list<T>(classify(caps), caps.local_mem_is_global, c)) {
    try {
      config.validate(memory::panel_width<T>, sizeof(T), caps);
      valid.push_back(config);
    } catch (const error&) {
    }
  }
  if (valid.empty())  // a tiny device: one panel, 4 work-items, no local memory
    valid.push_back(gemm_config::register_blocked(4, memory::panel_width<T>, 4, memory::panel_width<T> / 4));
  return valid;
}

/// The untuned choice for `caps` and `c`.
template <class T>
gemm_config default_config(const runtime::capabilities& caps, shape_class c) {
  return candidates<T>(caps, c).front();
}

/// The untuned choice for problem `s`: its class's, except where that is the gemv kernel on a
/// GPU whose first local-memory candidate has tiles for every compute unit twice over. There the
/// tiles' register reuse wins (H200: 128x3072x768, 384 tiles of 32x32, 61 us against gemv's 74);
/// with fewer, most units idle (128x768x768, 96 tiles on 132 units: 45-48 us against gemv's 35).
template <class T>
gemm_config default_config(const runtime::capabilities& caps, const gemm_shape& s) {
  const std::vector<gemm_config> list = candidates<T>(caps, classify(s.m));
  const auto local = std::find_if(list.begin(), list.end(), [](const gemm_config& c) { return c.family == gemm_family::local; });
  if (list.front().family != gemm_family::gemv || local == list.end()) return list.front();
  const std::size_t tiles = cpu::detail::ceil_div(s.m, local->tile_m) * cpu::detail::ceil_div(s.n, local->tile_n);
  return tiles >= 2 * std::size_t(std::max(1u, caps.compute_units)) ? *local : list.front();
}

/// Times candidates and remembers the fastest per device and element type: a gemm_config per
/// shape class, a conv_choice per conv layer shape. In memory for the tuner's lifetime and in
/// `<directory>/gemm-tuning-<key>.txt`, keyed by platform, device name, compute units,
/// CL_DRIVER_VERSION and coexec version. Thread-safe.
class tuner {
 public:
  /// An empty `directory` keeps choices in memory only. `budget` bounds one tune(): candidates
  /// after it ran out are not tried (the default always is).
  explicit tuner(std::filesystem::path directory = runtime::binary_cache::default_directory(),
                 std::chrono::milliseconds budget = std::chrono::seconds(3))
      : directory_(std::move(directory)), budget_(budget) {}

  /// The remembered choice, else a fresh tune().
  template <class T>
  gemm_config config(const runtime::context& ctx, shape_class c) {
    if (auto known = cached<T>(ctx, c)) return *known;
    return tune<T>(ctx, c);
  }

  /// The remembered choice (memory, then disk), never tuning.
  template <class T>
  std::optional<gemm_config> cached(const runtime::context& ctx, shape_class c) {
    const auto text = lookup(ctx, entry_key<T>(to_string(c)));
    return text ? parse_gemm(*text) : std::nullopt;
  }

  /// Times every candidate (within the budget) on representative_shape(c), skipping any that
  /// computes a wrong result, and remembers the fastest.
  template <class T>
  gemm_config tune(const runtime::context& ctx, shape_class c) {
    gemm_trial<T> problem(ctx, representative_shape(c));
    const gemm_config best = fastest(candidates<T>(ctx.caps(), c), [&](const gemm_config& candidate) { return problem.time(candidate); });
    remember(ctx, entry_key<T>(to_string(c)), best.to_string());
    return best;
  }

  /// The remembered kernel for conv layer `s`, else a fresh tune_conv().
  template <class T>
  conv_choice conv(const runtime::context& ctx, const conv2d_shape& s) {
    if (auto known = cached_conv<T>(ctx, s)) return *known;
    return tune_conv<T>(ctx, s);
  }

  /// The remembered kernel for conv layer `s` (memory, then disk), never tuning.
  template <class T>
  std::optional<conv_choice> cached_conv(const runtime::context& ctx, const conv2d_shape& s) {
    const auto text = lookup(ctx, entry_key<T>(conv_key(s)));
    return text ? parse_conv(*text) : std::nullopt;
  }

  /// Times every conv_candidates() choice (within the budget) on `s` itself, skipping any that
  /// computes a wrong result, and remembers the fastest; a single candidate is not timed.
  template <class T>
  conv_choice tune_conv(const runtime::context& ctx, const conv2d_shape& s) {
    const std::vector<conv_choice> choices = conv_candidates(ctx.caps(), s, sizeof(T));
    conv_choice best = choices.front();
    if (choices.size() > 1) {
      conv_trial<T> problem(ctx, s);
      best = fastest(choices, [&](const conv_choice& candidate) { return problem.time(candidate); });
    }
    remember(ctx, entry_key<T>(conv_key(s)), best.to_string());
    return best;
  }

  /// The file holding `ctx`'s choices (empty without a directory).
  std::filesystem::path file(const runtime::context& ctx) const {
    if (directory_.empty()) return {};
    char name[48];
    std::snprintf(name, sizeof name, "gemm-tuning-%016llx.txt",
                  static_cast<unsigned long long>(coexec::detail::fnv1a(device_key(ctx.caps()))));
    return directory_ / name;
  }

 private:
  using entries = std::map<std::string, std::string>;  // "<type> <shape class or conv layer>" -> the choice, as text

  /// The fastest of `choices` by `time` (seconds, nullopt for a wrong or failed candidate),
  /// trying them in order while the budget lasts; the first when none ran.
  template <class Choice, class Time>
  Choice fastest(const std::vector<Choice>& choices, Time&& time) const {
    const auto start = std::chrono::steady_clock::now();
    Choice best = choices.front();
    double best_seconds = std::numeric_limits<double>::infinity();
    for (const Choice& candidate : choices) {
      if (best_seconds < std::numeric_limits<double>::infinity() && std::chrono::steady_clock::now() - start > budget_) break;
      if (auto seconds = time(candidate); seconds && *seconds < best_seconds) {
        best = candidate;
        best_seconds = *seconds;
      }
    }
    return best;
  }

  /// Best of 5 runs of `run` in seconds after a warm-up run that `correct` checks; nullopt when
  /// it computes wrongly.
  template <class Run, class Check>
  static std::optional<double> best_run(Run&& run, Check&& correct) {
    run();
    if (!correct()) return std::nullopt;
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < 5; ++i) {
      const auto start = std::chrono::steady_clock::now();
      run();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
  }

  /// `count` values in [-1, 1) from a generator seeded with `seed`: a trial's operands.
  template <class T>
  static std::vector<T> random_values(std::size_t count, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<T> dist(T(-1), T(1));
    std::vector<T> values(count);
    for (T& v : values) v = dist(rng);
    return values;
  }

  /// A device buffer holding `values`, written before it returns.
  template <class T>
  static cl::Buffer upload(const runtime::context& ctx, const std::vector<T>& values) {
    cl::Buffer buffer = make_buffer<T>(ctx, values.size());
    write_rows(ctx, buffer, 0, values.data(), 1, values.size(), values.size()).wait();
    return buffer;
  }

  /// Whether `value` is within `terms` float roundings of `reference`, whose terms' absolute
  /// values sum to `magnitude`.
  template <class T>
  static bool close(double value, double reference, double magnitude, std::size_t terms) {
    return std::abs(value - reference) <= 2.0 * double(terms) * std::numeric_limits<T>::epsilon() * magnitude;
  }

  /// One representative problem in device buffers (any device, SVM or not), with a sampled
  /// double-precision reference.
  template <class T>
  struct gemm_trial {
    gemm_trial(const runtime::context& ctx, gemm_shape s)
        : context(ctx), shape(s), x(random_values<T>(s.m * s.k, 7)), w(random_values<T>(s.n * s.k, 8)) {
      std::vector<T> packed(memory::packed_size<T>(s.n, s.k));
      memory::pack_panels(w.data(), s.n, s.k, packed.data());
      x_dev = upload(ctx, x);
      w_dev = upload(ctx, packed);
      y_dev = make_buffer<T>(ctx, s.m * s.n);
    }

    /// Best of a few runs in seconds; nullopt when `config` fails to build or computes wrongly.
    std::optional<double> time(const gemm_config& config) {
      try {
        gemm_launcher<T> launcher(context, config, activation::none, false);
        sync::completion done(context, sync::completion::mode::event_polling);
        const gemm_operands<T> ops{{x_dev}, shape.k, {w_dev}, {}, {y_dev}, shape.n};
        return best_run([&] { done.wait(launcher.enqueue(ops, shape, done)); }, [&] { return correct(); });
      } catch (const error&) {
        return std::nullopt;
      }
    }

    bool correct() {
      std::vector<T> y(shape.m * shape.n);
      read_rows(context, y_dev, 0, y.data(), 1, y.size(), y.size()).wait();
      std::mt19937 rng(11);
      for (int sample = 0; sample < 64; ++sample) {
        const std::size_t r = rng() % shape.m, j = sample == 0 ? shape.n - 1 : rng() % shape.n;
        double dot = 0, magnitude = 0;
        for (std::size_t kk = 0; kk < shape.k; ++kk) {
          dot += double(x[r * shape.k + kk]) * double(w[j * shape.k + kk]);
          magnitude += std::abs(double(x[r * shape.k + kk]) * double(w[j * shape.k + kk]));
        }
        if (!close<T>(double(y[r * shape.n + j]), dot, magnitude, shape.k)) return false;
      }
      return true;
    }

    runtime::context context;
    gemm_shape shape;
    std::vector<T> x, w;
    cl::Buffer x_dev, w_dev, y_dev;
  };

  /// One conv layer in device buffers, with a sampled double-precision reference.
  template <class T>
  struct conv_trial {
    conv_trial(const runtime::context& ctx, const conv2d_shape& s)
        : context(ctx), shape(s), x(random_values<T>(s.input_size(), 7)), w(random_values<T>(s.weight_size(), 8)),
          x_dev(upload(ctx, x)), w_dev(upload(ctx, w)), y_dev(make_buffer<T>(ctx, s.output_size())) {}

    /// Best of a few runs of the whole layer in seconds; nullopt when `choice` fails to build or computes wrongly.
    std::optional<double> time(const conv_choice& choice) {
      try {
        conv_launcher<T> launcher(context, shape, activation::none, false, choice);
        sync::completion done(context, sync::completion::mode::event_polling);
        const std::size_t plane = shape.out_height() * shape.out_width();
        const conv_operands<T> ops{{x_dev}, {w_dev}, {}, {y_dev}, shape.out_channels * plane, plane};
        return best_run([&] { done.wait(launcher.enqueue(ops, {0, shape.out_channels}, {0, shape.out_height()}, done)); },
                        [&] { return correct(); });
      } catch (const error&) {
        return std::nullopt;
      }
    }

    bool correct() {
      const conv2d_shape& s = shape;
      std::vector<T> y(s.output_size());
      read_rows(context, y_dev, 0, y.data(), 1, y.size(), y.size()).wait();
      std::mt19937 rng(11);
      for (int sample = 0; sample < 64; ++sample) {
        const std::size_t at = sample == 0 ? y.size() - 1 : rng() % y.size();
        const std::size_t ow = at % s.out_width(), oh = at / s.out_width() % s.out_height();
        const std::size_t o = at / (s.out_width() * s.out_height()) % s.out_channels, n = at / (s.out_width() * s.out_height() * s.out_channels);
        const std::size_t first_channel = o / s.group_out_channels() * s.group_channels();
        double sum = 0, magnitude = 0;
        for (std::size_t c = 0; c < s.group_channels(); ++c)
          for (std::size_t kh = 0; kh < s.kernel_h; ++kh)
            for (std::size_t kw = 0; kw < s.kernel_w; ++kw) {
              const std::ptrdiff_t ih = std::ptrdiff_t(oh * s.stride_h + kh * s.dilation_h) - std::ptrdiff_t(s.pad_top);
              const std::ptrdiff_t iw = std::ptrdiff_t(ow * s.stride_w + kw * s.dilation_w) - std::ptrdiff_t(s.pad_left);
              if (ih < 0 || iw < 0 || ih >= std::ptrdiff_t(s.height) || iw >= std::ptrdiff_t(s.width)) continue;
              const double term = double(w[((o * s.group_channels() + c) * s.kernel_h + kh) * s.kernel_w + kw]) *
                                  double(x[((n * s.channels + first_channel + c) * s.height + std::size_t(ih)) * s.width + std::size_t(iw)]);
              sum += term;
              magnitude += std::abs(term);
            }
        if (!close<T>(double(y[at]), sum, magnitude, s.patch())) return false;
      }
      return true;
    }

    runtime::context context;
    conv2d_shape shape;
    std::vector<T> x, w;
    cl::Buffer x_dev, w_dev, y_dev;
  };

  /// The remembered text for `key` on `ctx`'s device (memory, then disk).
  std::optional<std::string> lookup(const runtime::context& ctx, const std::string& key) {
    std::lock_guard lock(mutex_);
    auto& known = device_entries(ctx);
    if (auto found = known.find(key); found != known.end()) return found->second;
    return std::nullopt;
  }

  /// Keeps `text` for `key` on `ctx`'s device, in memory and on disk.
  void remember(const runtime::context& ctx, const std::string& key, const std::string& text) {
    std::lock_guard lock(mutex_);
    device_entries(ctx)[key] = text;
    save(ctx);
  }

  static std::string device_key(const runtime::capabilities& caps) {
    // Compute units tell a sub-device (the emulated SoC) from its whole device.
    return caps.platform_name + " | " + caps.name + " | " + std::to_string(caps.compute_units) + " CU | " +
           caps.driver_version + " | coexec " + COEXEC_VERSION_STRING;
  }

  template <class T>
  static std::string entry_key(const std::string& what) {
    return std::string(std::is_same_v<T, float> ? "float " : "double ") + what;
  }

  /// One word naming a conv layer's shape: every field of conv2d_shape.
  static std::string conv_key(const conv2d_shape& s) {
    std::string key = "conv";
    for (std::size_t field : {s.batch, s.channels, s.height, s.width, s.out_channels, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w,
                              s.pad_top, s.pad_bottom, s.pad_left, s.pad_right, s.dilation_h, s.dilation_w, s.groups})
      key.append(1, ':').append(std::to_string(field));
    return key;
  }

  /// The entries of `ctx`'s device, read from disk on first use. Call with mutex_ held.
  entries& device_entries(const runtime::context& ctx) {
    const std::string key = device_key(ctx.caps());
    if (auto found = devices_.find(key); found != devices_.end()) return found->second;
    return devices_[key] = load(file(ctx), key);
  }

  // File format: a header line "# coexec gemm tuning: <device key>", then one line per choice,
  // two words of key and the choice:
  //   <type> <shape class> <family> tile_m=.. tile_n=.. tile_k=.. micro_m=.. micro_n=.. vector_width=.. k_split=..
  //   <type> conv:<batch>:<channels>:...:<groups> <kernel> [tile=..]
  static entries load(const std::filesystem::path& path, const std::string& key) {
    entries loaded;
    std::ifstream in(path);
    std::string line;
    if (path.empty() || !std::getline(in, line) || line != header(key)) return loaded;  // absent, or a hash collision
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string type, what, choice;
      if (fields >> type >> what >> std::ws && std::getline(fields, choice) && !choice.empty()) loaded[type + " " + what] = choice;
    }
    return loaded;
  }

  static std::optional<gemm_config> parse_gemm(const std::string& text) {
    std::istringstream fields(text);
    std::string family;
    gemm_config config;
    if (!(fields >> family)) return std::nullopt;
    config.family = family == "local" ? gemm_family::local : family == "gemv" ? gemm_family::gemv : gemm_family::register_blocked;
    for (auto [name, field] : {std::pair{"tile_m=", &config.tile_m}, std::pair{"tile_n=", &config.tile_n},
                               std::pair{"tile_k=", &config.tile_k}, std::pair{"micro_m=", &config.micro_m},
                               std::pair{"micro_n=", &config.micro_n}, std::pair{"vector_width=", &config.vector_width},
                               std::pair{"k_split=", &config.k_split}}) {
      std::string token;
      if (fields >> token && token.rfind(name, 0) == 0) *field = static_cast<unsigned>(std::stoul(token.substr(std::string(name).size())));
    }
    if (!fields) return std::nullopt;
    return config;
  }

  static std::optional<conv_choice> parse_conv(const std::string& text) {
    std::istringstream fields(text);
    std::string kernel, tile;
    if (!(fields >> kernel)) return std::nullopt;
    if (kernel == "igemm") return conv_choice{conv_kernel::igemm};
    if (kernel == "depthwise") return conv_choice{conv_kernel::depthwise};
    if (kernel == "tiled" && fields >> tile && tile.rfind("tile=", 0) == 0 && tile.size() > 5 &&
        tile.find_first_not_of("0123456789", 5) == std::string::npos)
      return conv_choice{conv_kernel::tiled, std::stoul(tile.substr(5))};
    return std::nullopt;
  }

  /// Best effort, like the binary cache: written through a temporary file and a rename.
  void save(const runtime::context& ctx) const {
    const auto path = file(ctx);
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    auto temporary = path;
    temporary += ".tmp" + std::to_string(std::random_device{}());
    {
      std::ofstream out(temporary);
      out << header(device_key(ctx.caps())) << "\n";
      for (const auto& [key, choice] : devices_.at(device_key(ctx.caps()))) out << key << " " << choice << "\n";
      if (!out) return;
    }
    std::filesystem::rename(temporary, path, ec);
    if (ec) std::filesystem::remove(temporary, ec);
  }

  static std::string header(const std::string& key) { return "# coexec gemm tuning: " + key; }

  std::filesystem::path directory_;
  std::chrono::milliseconds budget_;
  std::mutex mutex_;
  std::map<std::string, entries> devices_;  // device key -> its choices
};

}  // namespace coexec::gpu
