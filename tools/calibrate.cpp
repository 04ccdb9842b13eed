// coexec-calibrate: measures co-executed linear or conv2d layers on one platform and writes the
// training data of tools/train_predictor.py.
//
// For every shape of the sweep and a few aligned split points (conv2d: along output channels
// and along output rows) it runs the layer co-executed (the CPU part is timed exactly there)
// and, since the device side is timed exactly only when it finishes last, also the device slice
// alone. Each time is the fastest of --repeats runs after a warm-up. Rows (CSV, the trainer's
// schema):
//   op,side,shape_id,<predict::linear_features::names or conv_features::names...>,time_us
// one per side that has work; the features a side lacks are left empty. --totals adds one row
// per split point (tools/report.py plots these curves):
//   linear  shape_id,m,n,k,split,cpu_us,gpu_us,total_us
//   conv    shape_id,dimension,extent,split,cpu_us,gpu_us,total_us
//
//   coexec-calibrate --platform=pocl-16 [--op=linear|conv] --out=linear.csv [--totals=totals.csv]
//                    [--resume] [--budget-seconds=600] [--sweep=default|quick|tiny] [--splits=9]
//                    [--repeats=3]
// The conv sweep is the MobileNetV2 and ResNet-50 convolutions (bench/conv_layers.hpp) and
// variations of them (spatial size and channels halved or doubled).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/predict/features.hpp"
#include "coexec/runtime/platform.hpp"
#include "../bench/conv_layers.hpp"

using namespace coexec;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::string platform = "default", op = "linear", out = "linear.csv", totals, sweep = "default";
  bool resume = false;
  double budget_seconds = 600;
  std::size_t splits = 9;
  int repeats = 3;
};

template <class Shape>
struct shape_case {
  std::string id;
  Shape shape;
};

// Layer widths (N, K) of the networks the planner serves.
struct layer_family {
  const char* name;
  std::size_t n, k;
  std::initializer_list<std::size_t> rows;
};

constexpr std::size_t max_flops = 4'000'000'000;  // keeps one shape to seconds on pocl-2

std::vector<shape_case<gemm_shape>> linear_sweep(const std::string& kind) {
  static const layer_family families[] = {
      {"bert-qkv", 768, 768, {1, 8, 32, 128, 384}},      {"bert-ffn1", 3072, 768, {1, 8, 32, 128, 384}},
      {"bert-ffn2", 768, 3072, {1, 8, 32, 128, 384}},    {"vit-ffn1", 3072, 768, {197}},
      {"vit-qkv", 2304, 768, {197}},                     {"mobilenet-fc", 1000, 1280, {1, 8, 32}},
      {"resnet-fc", 1000, 2048, {1, 8, 32}},             {"llama-attn", 4096, 4096, {1, 8, 32, 96}},
      {"llama-ffn1", 11008, 4096, {1, 8, 32}},           {"llama-ffn2", 4096, 11008, {1, 8, 32}},
      {"small", 256, 256, {1, 16, 64, 256}},             {"se", 128, 512, {1, 64}},
  };
  const auto make = [](std::string name, std::size_t m, std::size_t n, std::size_t k) {
    return shape_case<gemm_shape>{name + "-m" + std::to_string(m) + "n" + std::to_string(n) + "k" + std::to_string(k), {m, n, k}};
  };
  std::vector<shape_case<gemm_shape>> cases;
  if (kind == "tiny") {  // a pipeline check in seconds
    for (std::size_t m : {1, 16}) cases.push_back(make("tiny", m, 256, 128));
    for (std::size_t m : {4, 64}) cases.push_back(make("tiny", m, 512, 64));
    return cases;
  }
  for (const layer_family& f : families)
    for (std::size_t m : f.rows) cases.push_back(make(f.name, m, f.n, f.k));
  // Random variations around them: widths from 64 to 8192, rows from 1 to 512, log-uniform.
  std::mt19937 rng(2024);
  const auto log_uniform = [&](double lo, double hi) {
    return std::exp(std::uniform_real_distribution<double>(std::log(lo), std::log(hi))(rng));
  };
  for (int i = 0; cases.size() < (kind == "quick" ? 24u : 240u) && i < 1000; ++i) {
    const auto m = static_cast<std::size_t>(log_uniform(1, 512));
    const std::size_t n = static_cast<std::size_t>(log_uniform(64, 8192)) / 16 * 16 + 16;
    const auto k = static_cast<std::size_t>(log_uniform(64, 8192));
    cases.push_back(make("rand" + std::to_string(i), m, n, k));
  }
  std::erase_if(cases, [](const shape_case<gemm_shape>& c) { return 2 * c.shape.m * c.shape.n * c.shape.k > max_flops; });
  if (kind == "quick") cases.resize(std::min<std::size_t>(cases.size(), 24));
  // Shuffled, so that a sweep cut short by its budget still covers every family.
  std::shuffle(cases.begin(), cases.end(), std::mt19937(7));
  return cases;
}

std::string conv_id(const std::string& name, const conv2d_shape& s) {
  return name + "-c" + std::to_string(s.channels) + "h" + std::to_string(s.height) + "w" + std::to_string(s.width) + "o" +
         std::to_string(s.out_channels) + "k" + std::to_string(s.kernel_h) + "s" + std::to_string(s.stride_h) + "g" +
         std::to_string(s.groups);
}

std::vector<shape_case<conv2d_shape>> conv_sweep(const std::string& kind) {
  std::vector<shape_case<conv2d_shape>> cases;
  if (kind == "tiny") {  // a pipeline check in seconds
    for (const conv2d_shape& s : {conv2d_shape{1, 16, 14, 14, 32, 1, 1}, conv2d_shape{1, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32},
                                 conv2d_shape{1, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1}})
      cases.push_back({conv_id("tiny", s), s});
    return cases;
  }
  for (const bench::conv_layer& layer : bench::conv_layers) cases.push_back({conv_id(layer.name, layer.shape), layer.shape});
  // Variations: spatial size and channels halved or doubled (depthwise layers keep C = O = groups).
  std::mt19937 rng(2024);
  const std::size_t real = cases.size();
  for (int i = 0; cases.size() < real + (kind == "quick" ? 0u : 80u) && i < 1000; ++i) {
    const bench::conv_layer& base = bench::conv_layers[rng() % real];
    conv2d_shape s = base.shape;
    const auto scaled = [&](std::size_t v, std::size_t minimum) {
      const int step = int(rng() % 3) - 1;  // halve, keep, double
      return std::max(minimum, step < 0 ? v / 2 : step > 0 ? v * 2 : v);
    };
    s.height = s.width = scaled(s.height, 7);
    const bool depthwise = s.groups > 1 && s.groups == s.channels;
    if (depthwise) {
      s.channels = s.out_channels = s.groups = scaled(s.channels, 16);
    } else if (s.channels > 3) {
      s.channels = scaled(s.channels, 16);
      s.out_channels = scaled(s.out_channels, 16);
    }
    if (s != base.shape) cases.push_back({conv_id(std::string("var") + std::to_string(i), s), s});
  }
  std::erase_if(cases, [](const shape_case<conv2d_shape>& c) { return 2 * c.shape.macs() > max_flops; });
  std::shuffle(cases.begin(), cases.end(), std::mt19937(7));
  if (kind == "quick") cases.resize(std::min<std::size_t>(cases.size(), 24));
  return cases;
}

// Rough cost of a shape, for the ETA: its FLOPs plus a fixed cost per run.
double work_of(const gemm_shape& s) { return 2.0 * double(s.m * s.n * s.k) + 5e6; }
double work_of(const conv2d_shape& s) { return 2.0 * s.macs() + 5e6; }

// The fastest of the repeats: on a shared machine interference only ever adds time.
double fastest(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

struct split_times {
  std::size_t split;
  double cpu_us, gpu_us, total_us;
};

// A conv2d CPU kernel that computes nothing: with it the device side runs alone, timed exactly.
struct idle_cpu {
  template <class T>
  void operator()(cpu::thread_pool&, const cpu::conv_args<T>&, cpu::index_range, cpu::index_range) const {}
};

class calibrator {
 public:
  explicit calibrator(const options& opts)
      : options_(opts), platform_(runtime::platform::named(opts.platform)), context_(platform_.make_context()),
        pool_(platform_.cpu_threads, platform_.cpu_cores), device_(predict::device_profile::of(context_)) {}

  /// Every split point of `c`, as CSV rows (sides) and totals rows.
  void measure(const shape_case<gemm_shape>& c, std::ostream& rows, std::ostream& totals) {
    const auto [m, n, k] = c.shape;
    const std::vector<float> w = random_values(n * k), xs = random_values(m * k);
    linear<float> layer(context_, pool_, n, k, w);
    memory::io_buffer<float> x(context_, m * k, layer.shared_memory()), y(context_, m * n, layer.shared_memory());
    std::copy(xs.begin(), xs.end(), x.data());
    const predict::linear_setup setup{sizeof(float), pool_.size(),
                                      gpu::default_config<float>(context_.caps(), gpu::classify(m)), device_};
    using features = predict::linear_features;
    for (std::size_t split : split_points(n, layer.split_granule(), true)) {
      const split_times t = time_split(
          [&]() -> const run_record& {
            layer(x.data(), m, y.data(), split);
            return layer.last_run();
          },
          [&] { return linear_device_alone_us(c.shape, split, w, x.data()); }, split < n);
      if (split > 0) write_row<features>(rows, c.id, predict::side::cpu, features::of(predict::side::cpu, c.shape, split, setup), t.cpu_us);
      if (split < n) write_row<features>(rows, c.id, predict::side::gpu, features::of(predict::side::gpu, c.shape, n - split, setup), t.gpu_us);
      totals << c.id << ',' << m << ',' << n << ',' << k << ',' << split << ',' << t.cpu_us << ',' << t.gpu_us << ',' << t.total_us << '\n';
    }
  }

  /// Every split point of `c` along both dimensions (the endpoints, the same runs either way,
  /// once), as CSV rows (sides) and totals rows.
  void measure(const shape_case<conv2d_shape>& c, std::ostream& rows, std::ostream& totals) {
    const conv2d_shape& s = c.shape;
    const std::vector<float> w = random_values(s.weight_size()), xs = random_values(s.input_size());
    conv2d<float> layer(context_, pool_, s, w);
    conv2d<float, idle_cpu> device_only(context_, pool_, s, w);
    memory::io_buffer<float> x(context_, s.input_size(), layer.shared_memory()), y(context_, s.output_size(), layer.shared_memory());
    std::copy(xs.begin(), xs.end(), x.data());
    // The kernel configuration the layer's launcher chose (a second launcher hits the program cache).
    const predict::conv_setup setup{sizeof(float), pool_.size(), gpu::conv_launcher<float>(context_, s, activation::none, false).config(),
                                    device_};
    using features = predict::conv_features;
    for (const plan::split_dimension d : features::dimensions) {
      const std::size_t extent = layer.extent(d);
      for (std::size_t split : split_points(extent, layer.split_granule(d), d == features::dimensions[0])) {
        const plan::split_plan at{d, split};
        const split_times t = time_split(
            [&]() -> const run_record& {
              layer(x.data(), y.data(), at);
              return layer.last_run();
            },
            [&] {
              std::vector<double> samples;
              for (int r = 0; r <= options_.repeats; ++r) {  // the first run warms up
                device_only(x.data(), y.data(), at);
                if (r > 0) samples.push_back(device_only.last_run().device_seconds * 1e6);
              }
              return fastest(samples);
            },
            split < extent);
        if (split > 0) write_row<features>(rows, c.id, predict::side::cpu, features::of(predict::side::cpu, s, d, split, setup), t.cpu_us);
        if (split < extent)
          write_row<features>(rows, c.id, predict::side::gpu, features::of(predict::side::gpu, s, d, extent - split, setup), t.gpu_us);
        totals << c.id << ',' << to_string(d) << ',' << extent << ',' << split << ',' << t.cpu_us << ',' << t.gpu_us << ','
               << t.total_us << '\n';
      }
    }
  }

  const predict::device_profile& device() const { return device_; }

 private:
  static std::vector<float> random_values(std::size_t count) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> values(-1, 1);
    std::vector<float> v(count);
    for (float& value : v) value = values(rng);
    return v;
  }

  // 0 and N (with_endpoints) and evenly spaced aligned points between them.
  std::vector<std::size_t> split_points(std::size_t n, std::size_t granule, bool with_endpoints) const {
    const std::size_t last = (n + granule - 1) / granule;
    std::set<std::size_t> points{0, n};
    for (std::size_t p = 1; p + 1 < options_.splits; ++p) points.insert(std::min(n, p * last / (options_.splits - 1) * granule));
    if (!with_endpoints) points.erase(0), points.erase(n);
    return {points.begin(), points.end()};
  }

  // `run` runs the layer at one split and returns its record; `device_alone_us` times the
  // device's part alone, for when the device finished first.
  template <class Run, class DeviceAlone>
  split_times time_split(Run&& run, DeviceAlone&& device_alone_us, bool device_part) {
    std::vector<double> cpu, total, device_exact, device_bound;
    const std::size_t split = run().split;  // warm-up
    for (int r = 0; r < options_.repeats; ++r) {
      const run_record& record = run();
      cpu.push_back(record.cpu_seconds * 1e6);
      total.push_back(record.total_seconds * 1e6);
      (record.device_exact ? device_exact : device_bound).push_back(record.device_seconds * 1e6);
    }
    double gpu_us = 0;
    if (device_part) {
      if (device_exact.size() * 2 >= cpu.size()) {
        gpu_us = fastest(device_exact);
      } else {  // the device finished first: time its slice alone, capped by what the co-run saw
        gpu_us = std::min(device_alone_us(), fastest(device_bound));
      }
    }
    return {split, split > 0 ? fastest(cpu) : 0.0, gpu_us, fastest(total)};
  }

  // The device computing channels [split, N) alone: a layer of just those channels, split 0.
  double linear_device_alone_us(const gemm_shape& s, std::size_t split, const std::vector<float>& w, const float* x_values) {
    const std::size_t columns = s.n - split;
    linear<float> slice(context_, pool_, columns, s.k, std::span(w).subspan(split * s.k));
    memory::io_buffer<float> x(context_, s.m * s.k, slice.shared_memory()), y(context_, s.m * columns, slice.shared_memory());
    std::copy(x_values, x_values + s.m * s.k, x.data());
    std::vector<double> samples;
    slice(x.data(), s.m, y.data(), 0);
    for (int r = 0; r < options_.repeats; ++r) {
      slice(x.data(), s.m, y.data(), 0);
      samples.push_back(slice.last_run().total_seconds * 1e6);
    }
    return fastest(samples);
  }

  template <class Features>
  static void write_row(std::ostream& out, const std::string& id, predict::side side, const typename Features::vector& features,
                        double time_us) {
    out << Features::op << ',' << to_string(side) << ',' << id;
    for (const double f : features) {
      out << ',';
      if (!std::isnan(f)) out << f;
    }
    out << ',' << time_us << '\n';
  }

  options options_;
  runtime::platform platform_;
  runtime::context context_;
  cpu::thread_pool pool_;
  predict::device_profile device_;
};

// Shape ids already in `path` (its third column), for --resume.
std::set<std::string> measured_shapes(const std::string& path) {
  std::set<std::string> ids;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream cells(line);
    std::string op, side, id;
    if (std::getline(cells, op, ',') && std::getline(cells, side, ',') && std::getline(cells, id, ',')) ids.insert(id);
  }
  return ids;
}

template <class Features>
std::string header() {
  std::string text = "op,side,shape_id";
  for (const auto name : Features::names) text += "," + std::string(name);
  return text + ",time_us";
}

std::string clock_text(double seconds) {
  const auto s = static_cast<long>(seconds);
  char text[32];
  std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  return text;
}

void show_progress(std::size_t done, std::size_t total, double done_work, double total_work, double elapsed) {
  constexpr int width = 30;
  const double share = total_work > 0 ? done_work / total_work : 1;
  const int filled = static_cast<int>(share * width);
  const std::string eta = done_work > 0 ? clock_text(elapsed / done_work * (total_work - done_work)) : "?";
  std::fprintf(stderr, "\r[%s%s] %3.0f%% %zu/%zu shapes, %s elapsed, ETA %s   ", std::string(filled, '#').c_str(),
               std::string(width - filled, '.').c_str(), 100 * share, done, total, clock_text(elapsed).c_str(), eta.c_str());
}

options parse(int argc, char** argv) {
  options o;
  const auto value = [](const std::string& arg, const char* name) -> std::optional<std::string> {
    const std::string prefix = std::string(name) + "=";
    if (arg.rfind(prefix, 0) == 0) return arg.substr(prefix.size());
    return std::nullopt;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (auto v = value(arg, "--platform")) o.platform = *v;
    else if (auto v = value(arg, "--op")) o.op = *v;
    else if (auto v = value(arg, "--out")) o.out = *v;
    else if (auto v = value(arg, "--totals")) o.totals = *v;
    else if (auto v = value(arg, "--sweep")) o.sweep = *v;
    else if (auto v = value(arg, "--budget-seconds")) o.budget_seconds = std::stod(*v);
    else if (auto v = value(arg, "--splits")) o.splits = std::max<std::size_t>(2, std::stoul(*v));
    else if (auto v = value(arg, "--repeats")) o.repeats = std::max(1, std::stoi(*v));
    else if (arg == "--resume") o.resume = true;
    else throw error(errc::invalid_argument, "unknown argument '" + arg + "' (see the comment atop tools/calibrate.cpp)");
  }
  if (o.sweep != "default" && o.sweep != "quick" && o.sweep != "tiny")
    throw error(errc::invalid_argument, "--sweep must be default, quick or tiny");
  if (o.op != "linear" && o.op != "conv") throw error(errc::invalid_argument, "--op must be linear or conv");
  return o;
}

template <class Shape>
int run(const options& o, std::vector<shape_case<Shape>> cases) {
  using features = typename predict::features_of<Shape>::type;
  const auto start = clock_type::now();
  calibrator cal(o);
  const std::set<std::string> done = o.resume ? measured_shapes(o.out) : std::set<std::string>{};
  std::erase_if(cases, [&](const shape_case<Shape>& c) { return done.contains(c.id); });

  const bool append = o.resume && !done.empty();
  std::ofstream rows(o.out, append ? std::ios::app : std::ios::trunc);
  std::ofstream totals;
  if (!append) rows << header<features>() << '\n';
  if (!o.totals.empty()) {
    totals.open(o.totals, append ? std::ios::app : std::ios::trunc);
    if (!append)
      totals << (std::is_same_v<Shape, gemm_shape> ? "shape_id,m,n,k" : "shape_id,dimension,extent") << ",split,cpu_us,gpu_us,total_us\n";
  }
  if (!rows || (!o.totals.empty() && !totals)) throw error(errc::io, "cannot write " + o.out + " or " + o.totals);
  std::fprintf(stderr, "calibrating %zu %s shapes on %s (%zu skipped), device: %u units, dispatch %.1f us\n", cases.size(),
               o.op.c_str(), o.platform.c_str(), done.size(), cal.device().compute_units, cal.device().dispatch_us);

  double total_work = 0, done_work = 0;
  for (const shape_case<Shape>& c : cases) total_work += work_of(c.shape);
  std::size_t finished = 0;
  for (const shape_case<Shape>& c : cases) {
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    show_progress(finished, cases.size(), done_work, total_work, elapsed);
    if (elapsed > o.budget_seconds) {
      std::fprintf(stderr, "\nbudget of %.0f s spent; --resume continues\n", o.budget_seconds);
      break;
    }
    // A shape's rows are written whole, so an interrupted sweep resumes cleanly.
    std::ostringstream shape_rows, shape_totals;
    cal.measure(c, shape_rows, shape_totals);
    rows << shape_rows.str() << std::flush;
    if (totals.is_open()) totals << shape_totals.str() << std::flush;
    done_work += work_of(c.shape);
    ++finished;
  }
  show_progress(finished, cases.size(), done_work, total_work, std::chrono::duration<double>(clock_type::now() - start).count());
  std::fprintf(stderr, "\nwrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const options o = parse(argc, argv);
    return o.op == "conv" ? run(o, conv_sweep(o.sweep)) : run(o, linear_sweep(o.sweep));
  } catch (const std::exception& e) {
    std::cerr << "coexec-calibrate: " << e.what() << "\n";
    return 2;
  }
}
