// coexec-calibrate: measures linear or conv2d layers on one platform and writes the training
// data of tools/train_predictor.py.
//
// For every shape of the sweep and a few aligned split points (conv2d: along output channels
// and along output rows) it times each side's part alone: the CPU part on the pool, the device
// part from its enqueue to its completion. Co-executed, the sides slow each other down and the
// device's time is only an upper bound when it finishes first; alone, each is what its model
// predicts. Each time is the fastest of at least --repeats runs after a warm-up, more (at most
// 50) while that point's runs took under 5 ms in all, so cheap points, the noisiest, get many.
// Rows (CSV, the trainer's schema):
//   op,side,shape_id,<predict::linear_features::names or conv_features::names...>,time_us
// one per side that has work; the features a side lacks are left empty. --totals adds one row
// per split point, with each side alone and the fastest co-executed run (tools/report.py plots
// these curves):
//   linear  shape_id,m,n,k,split,cpu_us,gpu_us,total_us
//   conv    shape_id,dimension,extent,split,cpu_us,gpu_us,total_us
// --noise measures every 8th shape a second time and writes both times of each row, under the
// rows' header plus repeat_us: how far repeated measurements agree bounds any model's accuracy.
//
//   coexec-calibrate --platform=pocl-16 [--op=linear|conv] --out=linear.csv [--totals=totals.csv]
//                    [--noise=noise.csv] [--resume] [--budget-seconds=600]
//                    [--sweep=default|quick|tiny] [--splits=9] [--repeats=3]
// The conv sweep is the MobileNetV2 and ResNet-50 convolutions (bench/conv_layers.hpp) and
// variations of them (spatial size and channels halved or doubled).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
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
  std::string platform = "default", op = "linear", out = "linear.csv", totals, noise, sweep = "default";
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

// One side's measurement at one split point: its CSV row up to the time, and the time.
struct sample {
  std::string row;
  double time_us;
};

struct split_times {
  double cpu_us, gpu_us, total_us;
};

class calibrator {
 public:
  explicit calibrator(const options& opts)
      : options_(opts), platform_(runtime::platform::named(opts.platform)), context_(platform_.make_context()),
        pool_(platform_.cpu_threads, platform_.cpu_cores), device_(predict::device_profile::of(context_)) {
    // This thread is the CPU side's worker 0 and its spin-waiter: kept off the device's cores
    // (emulated SoC), it never time-slices with a PoCL thread, which made runs up to 1.7x slower.
    if (!platform_.cpu_cores.empty()) cpu::pin_current_thread(platform_.cpu_cores.front());
  }

  /// Every split point of `c`: one sample per side that has work, and with `totals` one
  /// totals row per point (which costs co-executed runs).
  std::vector<sample> measure(const shape_case<gemm_shape>& c, std::ostream* totals) {
    const auto [m, n, k] = c.shape;
    const std::vector<float> w = random_values(n * k), xs = random_values(m * k);
    linear<float> layer(context_, pool_, n, k, w);
    memory::io_buffer<float> x(context_, m * k, layer.shared_memory()), y(context_, m * n, layer.shared_memory());
    std::copy(xs.begin(), xs.end(), x.data());
    const predict::linear_setup setup{sizeof(float), pool_.size(),
                                      gpu::default_config<float>(context_.caps(), gpu::classify(m)), device_};
    using features = predict::linear_features;
    std::vector<sample> samples;
    for (std::size_t split : split_points(n, layer.split_granule(), true)) {
      const split_times t = time_split(
          split > 0, split < n, totals != nullptr, [&] { layer.run_cpu_part(x.data(), m, y.data(), split); },
          [&] { layer.wait_device_part(layer.enqueue_device_part(x.data(), m, y.data(), split)); },
          [&] { layer(x.data(), m, y.data(), split); });
      const auto add = [&](predict::side side, std::size_t columns, double us) {
        samples.push_back(make_sample<features>(c.id, side, features::of(side, c.shape, columns, setup), us));
      };
      if (split > 0) add(predict::side::cpu, split, t.cpu_us);
      if (split < n) add(predict::side::gpu, n - split, t.gpu_us);
      if (totals)
        *totals << c.id << ',' << m << ',' << n << ',' << k << ',' << split << ',' << t.cpu_us << ',' << t.gpu_us << ',' << t.total_us
                << '\n';
    }
    return samples;
  }

  /// Every split point of `c` along both dimensions (the endpoints, the same runs either way,
  /// once), as for linear.
  std::vector<sample> measure(const shape_case<conv2d_shape>& c, std::ostream* totals) {
    const conv2d_shape& s = c.shape;
    const std::vector<float> w = random_values(s.weight_size()), xs = random_values(s.input_size());
    conv2d<float> layer(context_, pool_, s, w);
    memory::io_buffer<float> x(context_, s.input_size(), layer.shared_memory()), y(context_, s.output_size(), layer.shared_memory());
    std::copy(xs.begin(), xs.end(), x.data());
    // The kernel configuration the layer's launcher chose (a second launcher hits the program cache).
    const predict::conv_setup setup{sizeof(float), pool_.size(), gpu::conv_launcher<float>(context_, s, activation::none, false).config(),
                                    device_};
    using features = predict::conv_features;
    std::vector<sample> samples;
    for (const plan::split_dimension d : features::dimensions) {
      const std::size_t extent = layer.extent(d);
      for (std::size_t split : split_points(extent, layer.split_granule(d), d == features::dimensions[0])) {
        const plan::split_plan at{d, split};
        const split_times t = time_split(
            split > 0, split < extent, totals != nullptr, [&] { layer.run_cpu_part(x.data(), y.data(), at); },
            [&] { layer.wait_device_part(layer.enqueue_device_part(x.data(), y.data(), at)); },
            [&] { layer(x.data(), y.data(), at); });
        const auto add = [&](predict::side side, std::size_t count, double us) {
          samples.push_back(make_sample<features>(c.id, side, features::of(side, s, d, count, setup), us));
        };
        if (split > 0) add(predict::side::cpu, split, t.cpu_us);
        if (split < extent) add(predict::side::gpu, extent - split, t.gpu_us);
        if (totals)
          *totals << c.id << ',' << to_string(d) << ',' << extent << ',' << split << ',' << t.cpu_us << ',' << t.gpu_us << ','
                  << t.total_us << '\n';
      }
    }
    return samples;
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

  // One split point: the CPU part alone (`cpu`), the device part alone (`device`: enqueue and
  // wait), and for the totals the co-executed run (`both`); each side only when it has work.
  template <class Cpu, class Device, class Both>
  split_times time_split(bool cpu_part, bool device_part, bool co_executed, Cpu&& cpu, Device&& device, Both&& both) const {
    return {cpu_part ? fastest_us(cpu) : 0.0, device_part ? fastest_us(device) : 0.0, co_executed ? fastest_us(both) : 0.0};
  }

  // The fastest run of `run` after a warm-up: at least --repeats runs, more while they took
  // under 5 ms in all, at most 50. The fastest, since interference only ever adds time.
  template <class Run>
  double fastest_us(Run&& run) const {
    constexpr double point_budget_us = 5000;
    constexpr int max_repeats = 50;
    const auto run_us = [&] {
      const auto start = clock_type::now();
      run();
      return std::chrono::duration<double, std::micro>(clock_type::now() - start).count();
    };
    run_us();
    double fastest = run_us(), spent = fastest;
    for (int r = 1; r < options_.repeats || (spent < point_budget_us && r < max_repeats); ++r) {
      const double us = run_us();
      fastest = std::min(fastest, us);
      spent += us;
    }
    return fastest;
  }

  template <class Features>
  static sample make_sample(const std::string& id, predict::side side, const typename Features::vector& features, double time_us) {
    std::ostringstream row;
    row << Features::op << ',' << to_string(side) << ',' << id;
    for (const double f : features) {
      row << ',';
      if (!std::isnan(f)) row << f;
    }
    return {row.str(), time_us};
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
    else if (auto v = value(arg, "--noise")) o.noise = *v;
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

// Opens `path` for rows under `header`, appended when resuming into a file that has them.
std::ofstream open_csv(const std::string& path, const std::string& header, bool resume) {
  std::error_code no_file;
  const bool append = resume && std::filesystem::file_size(path, no_file) > 0 && !no_file;
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  if (!append) out << header << '\n';
  if (!out) throw error(errc::io, "cannot write " + path);
  return out;
}

template <class Shape>
int run(const options& o, std::vector<shape_case<Shape>> cases) {
  using features = typename predict::features_of<Shape>::type;
  const auto start = clock_type::now();
  calibrator cal(o);
  // Every 8th shape of the whole sweep, so that a resumed sweep re-measures the same ones.
  std::set<std::string> noisy;
  if (!o.noise.empty())
    for (std::size_t i = 0; i < cases.size(); i += 8) noisy.insert(cases[i].id);
  const std::set<std::string> done = o.resume ? measured_shapes(o.out) : std::set<std::string>{};
  std::erase_if(cases, [&](const shape_case<Shape>& c) { return done.contains(c.id); });

  const bool resume = o.resume && !done.empty();
  std::ofstream rows = open_csv(o.out, header<features>(), resume), totals, noise;
  if (!o.totals.empty())
    totals = open_csv(o.totals, std::string(std::is_same_v<Shape, gemm_shape> ? "shape_id,m,n,k" : "shape_id,dimension,extent") +
                                    ",split,cpu_us,gpu_us,total_us",
                      resume);
  if (!o.noise.empty()) noise = open_csv(o.noise, header<features>() + ",repeat_us", resume);
  std::fprintf(stderr, "calibrating %zu %s shapes on %s (%zu skipped), device: %u units, dispatch %.1f us\n", cases.size(),
               o.op.c_str(), o.platform.c_str(), done.size(), cal.device().compute_units, cal.device().dispatch_us);

  const auto work = [&](const shape_case<Shape>& c) { return work_of(c.shape) * (noisy.contains(c.id) ? 2 : 1); };
  double total_work = 0, done_work = 0;
  for (const shape_case<Shape>& c : cases) total_work += work(c);
  std::size_t finished = 0;
  for (const shape_case<Shape>& c : cases) {
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    show_progress(finished, cases.size(), done_work, total_work, elapsed);
    if (elapsed > o.budget_seconds) {
      std::fprintf(stderr, "\nbudget of %.0f s spent; --resume continues\n", o.budget_seconds);
      break;
    }
    // A shape's rows are written whole, so an interrupted sweep resumes cleanly.
    std::ostringstream shape_rows, shape_totals, shape_noise;
    const std::vector<sample> samples = cal.measure(c, totals.is_open() ? &shape_totals : nullptr);
    for (const sample& s : samples) shape_rows << s.row << ',' << s.time_us << '\n';
    if (noisy.contains(c.id)) {
      const std::vector<sample> again = cal.measure(c, nullptr);  // the same points in the same order
      for (std::size_t i = 0; i < samples.size(); ++i)
        shape_noise << samples[i].row << ',' << samples[i].time_us << ',' << again[i].time_us << '\n';
    }
    rows << shape_rows.str() << std::flush;
    if (totals.is_open()) totals << shape_totals.str() << std::flush;
    if (noise.is_open()) noise << shape_noise.str() << std::flush;
    done_work += work(c);
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
