// coexec-calibrate: measures linear or conv2d layers on one platform and writes the training
// data of tools/train_predictor.py.
//
// For every shape of the sweep and a few aligned split points (conv2d: along output channels
// and along output rows) it times each side's part alone: the CPU part on the pool, the device
// part from its enqueue to its completion. Co-executed, the sides slow each other down and the
// device's time is only an upper bound when it finishes first; alone, each is what its model
// predicts.
//
// Every point is measured in --passes separate passes, seconds apart, and keeps the least of
// them, because the timing noise is slow: a PoCL device switches between two speeds 1.5x apart
// for seconds at a time, and a CPU side can be slow for a whole second, so back-to-back runs of
// one point all fall in the same slow period and only time apart gets past it. The sweep goes
// in blocks of shapes: each pass runs over the whole block, sized to take about --pass-seconds
// (a block too small for that waits out the rest between passes), and the block's rows are
// written once all its passes are done, so no row ever holds fewer passes. Within a pass a
// point's time is the fastest of at least --repeats runs after a warm-up, more (at most 50)
// while that point's runs took under 5 ms in all, so cheap points, the noisiest, get many.
// Rows (CSV, the trainer's schema):
//   op,side,shape_id,<predict::linear_features::names or conv_features::names...>,time_us
// one per side that has work; the features a side lacks are left empty. --totals adds one row
// per split point, with each side alone and the fastest co-executed run (tools/report.py plots
// these curves):
//   linear  shape_id,m,n,k,split,cpu_us,gpu_us,total_us
//   conv    shape_id,dimension,extent,split,cpu_us,gpu_us,total_us
// --noise measures every 8th shape a second time, again in --passes passes, in the block after
// its first measurement, and writes both times of each row, under the rows' header plus
// repeat_us: how far repeated measurements agree bounds any model's accuracy.
// --budget-seconds stops the sweep at the first block boundary past it (the repeats a block
// owes are still measured); --resume continues a sweep stopped or killed, with the options it
// had: it keeps the shapes whose rows are whole and measures the rest.
//
//   coexec-calibrate --platform=pocl-16 [--op=linear|conv] --out=linear.csv [--totals=totals.csv]
//                    [--noise=noise.csv] [--resume] [--budget-seconds=600]
//                    [--sweep=default|quick|tiny] [--splits=9] [--repeats=3] [--passes=3]
//                    [--pass-seconds=1]
// The conv sweep is the MobileNetV2 and ResNet-50 convolutions (bench/conv_layers.hpp) and
// variations of them (spatial size and channels halved or doubled).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
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
  int passes = 3;
  double pass_seconds = 1;
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
constexpr std::size_t first_block_shapes = 4;   // before a pass was timed (see run)

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
  std::string row{};
  double time_us{};
};

struct split_times {
  double cpu_us{}, gpu_us{}, total_us{};
};

// One split point's totals row (--totals) up to the times, and the times.
struct totals_sample {
  std::string row{};
  split_times times{};
};

// Every split point of one shape, as the least time of each over the passes taken so far.
struct measurement {
  std::vector<sample> samples{};        // one per side that has work at each split point
  std::vector<totals_sample> totals{};  // with --totals, one per split point
  int passes = 0;

  // Adds one pass, which measured the same points in the same order.
  void keep_least(measurement pass) {
    if (passes++ == 0) {
      samples = std::move(pass.samples), totals = std::move(pass.totals);
      return;
    }
    for (std::size_t i = 0; i < samples.size(); ++i) samples[i].time_us = std::min(samples[i].time_us, pass.samples[i].time_us);
    for (std::size_t i = 0; i < totals.size(); ++i) {
      split_times& t = totals[i].times;
      const split_times& p = pass.totals[i].times;
      t = {std::min(t.cpu_us, p.cpu_us), std::min(t.gpu_us, p.gpu_us), std::min(t.total_us, p.total_us)};
    }
  }
};

// One pass over a shape's split points (with its totals or without), on a layer built once.
using pass_runner = std::function<measurement(bool with_totals)>;

class calibrator {
 public:
  explicit calibrator(const options& opts)
      : options_(opts), platform_(runtime::platform::named(opts.platform)), context_(platform_.make_context()),
        pool_(platform_.cpu_threads, platform_.cpu_cores), device_(predict::device_profile::of(context_)) {
    // This thread is the CPU side's worker 0 and its spin-waiter: kept off the device's cores
    // (emulated SoC), it never time-slices with a PoCL thread, which made runs up to 1.7x slower.
    if (!platform_.cpu_cores.empty()) cpu::pin_current_thread(platform_.cpu_cores.front());
  }

  /// Builds `c`'s layer and buffers once; each call of the result is one pass over its split
  /// points: one sample per side that has work, and with totals one totals row per point
  /// (which costs co-executed runs).
  pass_runner prepare(const shape_case<gemm_shape>& c) {
    struct state {
      linear<float> layer;
      memory::io_buffer<float> x, y;
      state(const runtime::context& context, cpu::thread_pool& pool, const gemm_shape& s)
          : layer(context, pool, s.n, s.k, random_values(s.n * s.k)), x(context, s.m * s.k, layer.shared_memory()),
            y(context, s.m * s.n, layer.shared_memory()) {
        const std::vector<float> xs = random_values(s.m * s.k);
        std::copy(xs.begin(), xs.end(), x.data());
      }
    };
    const auto st = std::make_shared<state>(context_, pool_, c.shape);
    const std::size_t m = c.shape.m, n = c.shape.n;
    const predict::linear_setup setup{sizeof(float), pool_.size(),
                                      gpu::default_config<float>(context_.caps(), c.shape), device_};
    return [this, c, st, m, n, setup](bool with_totals) {
      using features = predict::linear_features;
      linear<float>& layer = st->layer;
      float *x = st->x.data(), *y = st->y.data();
      measurement pass;
      for (std::size_t split : split_points(n, layer.split_granule(), true)) {
        const split_times t = time_split(
            split > 0, split < n, with_totals, [&] { layer.run_cpu_part(x, m, y, split); },
            [&] { layer.wait_device_part(layer.enqueue_device_part(x, m, y, split)); }, [&] { layer(x, m, y, split); });
        const auto add = [&](predict::side side, std::size_t columns, double us) {
          pass.samples.push_back(make_sample<features>(c.id, side, features::of(side, c.shape, columns, setup), us));
        };
        if (split > 0) add(predict::side::cpu, split, t.cpu_us);
        if (split < n) add(predict::side::gpu, n - split, t.gpu_us);
        if (with_totals) {
          std::ostringstream row;
          row << c.id << ',' << m << ',' << n << ',' << c.shape.k << ',' << split;
          pass.totals.push_back({row.str(), t});
        }
      }
      return pass;
    };
  }

  /// As for linear, along both dimensions (the endpoints, the same runs either way, once).
  pass_runner prepare(const shape_case<conv2d_shape>& c) {
    struct state {
      conv2d<float> layer;
      memory::io_buffer<float> x, y;
      state(const runtime::context& context, cpu::thread_pool& pool, const conv2d_shape& s)
          : layer(context, pool, s, random_values(s.weight_size())), x(context, s.input_size(), layer.shared_memory()),
            y(context, s.output_size(), layer.shared_memory()) {
        const std::vector<float> xs = random_values(s.input_size());
        std::copy(xs.begin(), xs.end(), x.data());
      }
    };
    const auto st = std::make_shared<state>(context_, pool_, c.shape);
    // The kernel configuration the layer's launcher chose (a second launcher hits the program cache).
    const predict::conv_setup setup{sizeof(float), pool_.size(),
                                    gpu::conv_launcher<float>(context_, c.shape, activation::none, false).config(), device_};
    return [this, c, st, setup](bool with_totals) {
      using features = predict::conv_features;
      conv2d<float>& layer = st->layer;
      float *x = st->x.data(), *y = st->y.data();
      measurement pass;
      for (const plan::split_dimension d : features::dimensions) {
        const std::size_t extent = layer.extent(d);
        for (std::size_t split : split_points(extent, layer.split_granule(d), d == features::dimensions[0])) {
          const plan::split_plan at{d, split};
          const split_times t = time_split(
              split > 0, split < extent, with_totals, [&] { layer.run_cpu_part(x, y, at); },
              [&] { layer.wait_device_part(layer.enqueue_device_part(x, y, at)); }, [&] { layer(x, y, at); });
          const auto add = [&](predict::side side, std::size_t count, double us) {
            pass.samples.push_back(make_sample<features>(c.id, side, features::of(side, c.shape, d, count, setup), us));
          };
          if (split > 0) add(predict::side::cpu, split, t.cpu_us);
          if (split < extent) add(predict::side::gpu, extent - split, t.gpu_us);
          if (with_totals) {
            std::ostringstream row;
            row << c.id << ',' << to_string(d) << ',' << extent << ',' << split;
            pass.totals.push_back({row.str(), t});
          }
        }
      }
      return pass;
    };
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
  // under 5 ms in all, at most 50. The fastest, since interference only ever adds time. One
  // pass's runs follow each other within milliseconds; the passes (see run) spread a point's
  // runs over seconds.
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

// Cell `column` of a CSV line (no quoting in these files), or "" past its end.
std::string cell(const std::string& line, std::size_t column) {
  std::size_t begin = 0;
  for (; column > 0; --column) {
    begin = line.find(',', begin);
    if (begin == std::string::npos) return {};
    ++begin;
  }
  return line.substr(begin, line.find(',', begin) - begin);
}

// For --resume: the shapes whose rows `path` holds whole (shape id in the third column). A
// line cut short by a kill (no newline, or fewer cells than the header) leaves its shape out,
// to be measured again.
std::set<std::string> measured_shapes(const std::string& path) {
  std::set<std::string> ids, cut;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return ids;
  const auto commas = [](const std::string& text) { return std::count(text.begin(), text.end(), ','); };
  const auto columns = commas(line);
  while (std::getline(in, line)) (in.eof() || commas(line) != columns ? cut : ids).insert(cell(line, 2));
  for (const std::string& id : cut) ids.erase(id);
  return ids;
}

// For --resume: drops the lines of `path` (after its header) whose shape id, cell `column`, is
// not in `keep`, and any line cut short, so that a shape measured again is not in it twice.
// Rewrites the file only if it drops a line.
void keep_shapes(const std::string& path, std::size_t column, const std::set<std::string>& keep) {
  std::ifstream in(path);
  std::string header, line, kept;
  if (!std::getline(in, header)) return;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (!in.eof() && keep.contains(cell(line, column))) kept += line + '\n';
    else dropped = true;
  }
  in.close();
  if (!dropped) return;
  const std::string temporary = path + ".partial";
  std::ofstream out(temporary, std::ios::trunc);
  out << header << '\n' << kept;
  if (!out.flush()) throw error(errc::io, "cannot write " + temporary);
  out.close();
  std::filesystem::rename(temporary, path);
}

template <class Features>
std::string header() {
  std::string text = "op,side,shape_id";
  for (const auto name : Features::names) text.append(1, ',').append(name);
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
    else if (auto v = value(arg, "--passes")) o.passes = std::max(1, std::stoi(*v));
    else if (auto v = value(arg, "--pass-seconds")) o.pass_seconds = std::max(0.0, std::stod(*v));
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
  const auto seconds_since = [](clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); };
  calibrator cal(o);
  // Every 8th shape of the whole sweep, so that a resumed sweep re-measures the same ones.
  std::set<std::string> noisy;
  if (!o.noise.empty())
    for (std::size_t i = 0; i < cases.size(); i += 8) noisy.insert(cases[i].id);
  const std::set<std::string> done = o.resume ? measured_shapes(o.out) : std::set<std::string>{};
  if (o.resume) {
    keep_shapes(o.out, 2, done);
    if (!o.totals.empty()) keep_shapes(o.totals, 0, done);
    if (!o.noise.empty()) keep_shapes(o.noise, 2, done);
  }
  std::erase_if(cases, [&](const shape_case<Shape>& c) { return done.contains(c.id); });

  const bool resume = o.resume && !done.empty();
  std::ofstream rows = open_csv(o.out, header<features>(), resume), totals, noise;
  if (!o.totals.empty())
    totals = open_csv(o.totals, std::string(std::is_same_v<Shape, gemm_shape> ? "shape_id,m,n,k" : "shape_id,dimension,extent") +
                                    ",split,cpu_us,gpu_us,total_us",
                      resume);
  if (!o.noise.empty()) noise = open_csv(o.noise, header<features>() + ",repeat_us", resume);
  std::fprintf(stderr, "calibrating %zu %s shapes on %s (%zu skipped) in %d passes, device: %u units, dispatch %.1f us\n",
               cases.size(), o.op.c_str(), o.platform.c_str(), done.size(), o.passes, cal.device().compute_units,
               cal.device().dispatch_us);

  // Writes one shape: its totals, then its repeats (`again`, --noise), then its rows, each the
  // least over all passes. --resume takes a shape as measured once its rows are in.
  const auto write = [&](const shape_case<Shape>& c, const measurement& m, const measurement* again) {
    if (m.passes != o.passes || (again && (again->passes != o.passes || again->samples.size() != m.samples.size())))
      throw std::logic_error("shape " + c.id + " measured in fewer passes than --passes");
    if (totals.is_open()) {
      for (const totals_sample& t : m.totals)
        totals << t.row << ',' << t.times.cpu_us << ',' << t.times.gpu_us << ',' << t.times.total_us << '\n';
      totals.flush();
    }
    if (again) {
      for (std::size_t i = 0; i < m.samples.size(); ++i)
        noise << m.samples[i].row << ',' << m.samples[i].time_us << ',' << again->samples[i].time_us << '\n';
      noise.flush();
    }
    for (const sample& s : m.samples) rows << s.row << ',' << s.time_us << '\n';
    rows.flush();
    if (!rows || (totals.is_open() && !totals) || (noise.is_open() && !noise)) throw error(errc::io, "cannot write the rows of " + c.id);
  };

  // The progress bar and the ETA count work: a shape's once per pass, and a noisy shape's twice.
  const auto work = [](const shape_case<Shape>& c) { return work_of(c.shape); };
  double total_work = 0, done_work = 0, rest_work = 0;
  for (const shape_case<Shape>& c : cases) {
    rest_work += work(c);
    total_work += work(c) * o.passes * (noisy.contains(c.id) ? 2 : 1);
  }
  // One shape's measurement in the block being measured: its first, or the repeat of a noisy
  // shape, measured in the block after its first so that the two lie seconds apart.
  struct job {
    const shape_case<Shape>* shape{};
    bool repeat{};
    measurement first{};  // a repeat's first measurement
    measurement least{};  // the least over this block's passes
  };
  std::vector<job> owed;  // noisy shapes of the last block, owed their repeat
  double pass_seconds = 0, pass_work = 0;  // all passes so far, for sizing blocks
  std::size_t next = 0, finished = 0;
  bool stopped = false;
  while (next < cases.size() || !owed.empty()) {
    show_progress(finished, cases.size(), done_work, total_work, seconds_since(start));
    if (!stopped && next < cases.size() && seconds_since(start) > o.budget_seconds) {
      std::fprintf(stderr, "\nbudget of %.0f s spent; --resume continues\n", o.budget_seconds);
      stopped = true;
    }
    if (stopped && owed.empty()) break;
    // The block: the repeats owed, and unless the budget is spent, new shapes while one pass
    // over the block would take under --pass-seconds at the pace of the passes so far (before
    // any, 4 shapes). The last shapes join the block before them rather than form a short one.
    std::vector<job> block;
    double block_work = 0;
    for (job& j : owed) {
      block.push_back({j.shape, true, std::move(j.least), {}});
      block_work += work(*j.shape);
    }
    owed.clear();
    const double target = o.pass_seconds <= 0 ? 0
                          : pass_work > 0     ? o.pass_seconds * pass_work / pass_seconds
                                              : std::numeric_limits<double>::infinity();
    for (std::size_t taken = 0; !stopped && next < cases.size(); ++taken) {
      const bool full = block_work >= target || (std::isinf(target) && taken == first_block_shapes);
      if (taken > 0 && full && !(std::isfinite(target) && rest_work < target / 2)) break;
      block.push_back({&cases[next], false, {}, {}});
      block_work += work(cases[next]);
      rest_work -= work(cases[next++]);
    }

    std::vector<pass_runner> runners;
    for (const job& j : block) runners.push_back(cal.prepare(*j.shape));
    for (int pass = 0; pass < o.passes; ++pass) {
      const auto pass_start = clock_type::now();
      for (std::size_t i = 0; i < block.size(); ++i) {
        block[i].least.keep_least(runners[i](totals.is_open() && !block[i].repeat));
        done_work += work(*block[i].shape);
        show_progress(finished, cases.size(), done_work, total_work, seconds_since(start));
      }
      const double seconds = seconds_since(pass_start);
      pass_seconds += seconds;
      pass_work += block_work;
      // A block too small to take --pass-seconds (a tiny sweep, the last repeats) waits out
      // the rest, so that its passes still lie apart.
      if (pass + 1 < o.passes && seconds < o.pass_seconds)
        std::this_thread::sleep_for(std::chrono::duration<double>(o.pass_seconds - seconds));
    }
    runners.clear();  // the block's layers and buffers
    for (job& j : block) {
      if (!j.repeat && noisy.contains(j.shape->id)) {
        owed.push_back(std::move(j));
        continue;
      }
      write(*j.shape, j.repeat ? j.first : j.least, j.repeat ? &j.least : nullptr);
      ++finished;
    }
  }
  show_progress(finished, cases.size(), done_work, total_work, seconds_since(start));
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
