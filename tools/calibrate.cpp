// coexec-calibrate: measures co-executed linear layers on one platform and writes the training
// data of tools/train_predictor.py.
//
// For every shape of the sweep and a few aligned split points it runs the layer co-executed
// (the CPU part is timed exactly there) and, since the device side is timed exactly only when
// it finishes last, also the device slice alone. Rows (CSV, the trainer's schema):
//   op,side,shape_id,<predict::linear_features::names...>,time_us
// one per side that has columns; the features a side lacks are left empty. --totals adds
//   shape_id,m,n,k,split,cpu_us,gpu_us,total_us
// per split point (tools/report.py plots these curves).
//
//   coexec-calibrate --platform=pocl-16 --out=linear.csv [--totals=totals.csv] [--resume]
//                    [--budget-seconds=600] [--sweep=default|quick|tiny] [--splits=9] [--repeats=3]
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
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/predict/features.hpp"
#include "coexec/runtime/platform.hpp"

using namespace coexec;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::string platform = "default", out = "linear.csv", totals, sweep = "default";
  bool resume = false;
  double budget_seconds = 600;
  std::size_t splits = 9;
  int repeats = 3;
};

struct shape_case {
  std::string id;
  gemm_shape shape;
};

// Layer widths (N, K) of the networks the planner serves.
struct layer_family {
  const char* name;
  std::size_t n, k;
  std::initializer_list<std::size_t> rows;
};

constexpr std::size_t max_flops = 4'000'000'000;  // keeps one shape to seconds on pocl-2

std::vector<shape_case> sweep(const std::string& kind) {
  static const layer_family families[] = {
      {"bert-qkv", 768, 768, {1, 8, 32, 128, 384}},      {"bert-ffn1", 3072, 768, {1, 8, 32, 128, 384}},
      {"bert-ffn2", 768, 3072, {1, 8, 32, 128, 384}},    {"vit-ffn1", 3072, 768, {197}},
      {"vit-qkv", 2304, 768, {197}},                     {"mobilenet-fc", 1000, 1280, {1, 8, 32}},
      {"resnet-fc", 1000, 2048, {1, 8, 32}},             {"llama-attn", 4096, 4096, {1, 8, 32, 96}},
      {"llama-ffn1", 11008, 4096, {1, 8, 32}},           {"llama-ffn2", 4096, 11008, {1, 8, 32}},
      {"small", 256, 256, {1, 16, 64, 256}},             {"se", 128, 512, {1, 64}},
  };
  const auto make = [](std::string name, std::size_t m, std::size_t n, std::size_t k) {
    return shape_case{name + "-m" + std::to_string(m) + "n" + std::to_string(n) + "k" + std::to_string(k), {m, n, k}};
  };
  std::vector<shape_case> cases;
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
  std::erase_if(cases, [](const shape_case& c) { return 2 * c.shape.m * c.shape.n * c.shape.k > max_flops; });
  if (kind == "quick") cases.resize(std::min<std::size_t>(cases.size(), 24));
  // Shuffled, so that a sweep cut short by its budget still covers every family.
  std::shuffle(cases.begin(), cases.end(), std::mt19937(7));
  return cases;
}

// Rough cost of a shape, for the ETA: its FLOPs plus a fixed cost per run.
double work_of(const gemm_shape& s) { return 2.0 * double(s.m * s.n * s.k) + 5e6; }

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

struct split_times {
  std::size_t split;
  double cpu_us, gpu_us, total_us;
};

class calibrator {
 public:
  explicit calibrator(const options& opts)
      : options_(opts), platform_(runtime::platform::named(opts.platform)), context_(platform_.make_context()),
        pool_(platform_.cpu_threads, platform_.cpu_cores), device_(predict::device_profile::of(context_)) {}

  /// Every split point of `c`, as CSV rows (sides) and totals rows.
  void measure(const shape_case& c, std::ostream& rows, std::ostream& totals) {
    const auto [m, n, k] = c.shape;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> values(-1, 1);
    std::vector<float> w(n * k), xs(m * k);
    for (float& v : w) v = values(rng);
    for (float& v : xs) v = values(rng);
    linear<float> layer(context_, pool_, n, k, w);
    memory::io_buffer<float> x(context_, m * k, layer.shared_memory()), y(context_, m * n, layer.shared_memory());
    std::copy(xs.begin(), xs.end(), x.data());
    const predict::linear_setup setup{sizeof(float), pool_.size(),
                                      gpu::default_config<float>(context_.caps(), gpu::classify(m)), device_};
    for (std::size_t split : split_points(n, layer.split_granule())) {
      const split_times t = time_split(layer, x.data(), y.data(), c.shape, split, w);
      if (split > 0) write_row(rows, c.id, predict::side::cpu, predict::linear_features::of(predict::side::cpu, c.shape, split, setup), t.cpu_us);
      if (split < n) write_row(rows, c.id, predict::side::gpu, predict::linear_features::of(predict::side::gpu, c.shape, n - split, setup), t.gpu_us);
      totals << c.id << ',' << m << ',' << n << ',' << k << ',' << split << ',' << t.cpu_us << ',' << t.gpu_us << ',' << t.total_us << '\n';
    }
  }

  const predict::device_profile& device() const { return device_; }

 private:
  // 0, N and evenly spaced aligned points between them.
  std::vector<std::size_t> split_points(std::size_t n, std::size_t granule) const {
    const std::size_t last = (n + granule - 1) / granule;
    std::set<std::size_t> points{0, n};
    for (std::size_t p = 1; p + 1 < options_.splits; ++p) points.insert(std::min(n, p * last / (options_.splits - 1) * granule));
    return {points.begin(), points.end()};
  }

  split_times time_split(linear<float>& layer, const float* x, float* y, const gemm_shape& s, std::size_t split,
                         const std::vector<float>& w) {
    std::vector<double> cpu, total, device_exact, device_bound;
    layer(x, s.m, y, split);  // warm-up
    for (int r = 0; r < options_.repeats; ++r) {
      layer(x, s.m, y, split);
      const run_record& run = layer.last_run();
      cpu.push_back(run.cpu_seconds * 1e6);
      total.push_back(run.total_seconds * 1e6);
      (run.device_exact ? device_exact : device_bound).push_back(run.device_seconds * 1e6);
    }
    double gpu_us = 0;
    if (split < s.n) {
      if (device_exact.size() * 2 >= cpu.size()) {
        gpu_us = median(device_exact);
      } else {  // the device finished first: time its slice alone, capped by what the co-run saw
        gpu_us = std::min(device_alone_us(s, split, w, x), median(device_bound));
      }
    }
    return {split, split > 0 ? median(cpu) : 0.0, gpu_us, median(total)};
  }

  // The device computing channels [split, N) alone: a layer of just those channels, split 0.
  double device_alone_us(const gemm_shape& s, std::size_t split, const std::vector<float>& w, const float* x_values) {
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
    return median(samples);
  }

  static void write_row(std::ostream& out, const std::string& id, predict::side side,
                        const predict::linear_features::vector& features, double time_us) {
    out << predict::linear_features::op << ',' << to_string(side) << ',' << id;
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

std::string header() {
  std::string text = "op,side,shape_id";
  for (const auto name : predict::linear_features::names) text += "," + std::string(name);
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
  return o;
}

int run(const options& o) {
  const auto start = clock_type::now();
  calibrator cal(o);
  std::vector<shape_case> cases = sweep(o.sweep);
  const std::set<std::string> done = o.resume ? measured_shapes(o.out) : std::set<std::string>{};
  std::erase_if(cases, [&](const shape_case& c) { return done.contains(c.id); });

  const bool append = o.resume && !done.empty();
  std::ofstream rows(o.out, append ? std::ios::app : std::ios::trunc);
  std::ofstream totals;
  if (!append) rows << header() << '\n';
  if (!o.totals.empty()) {
    totals.open(o.totals, append ? std::ios::app : std::ios::trunc);
    if (!append) totals << "shape_id,m,n,k,split,cpu_us,gpu_us,total_us\n";
  }
  if (!rows || (!o.totals.empty() && !totals)) throw error(errc::io, "cannot write " + o.out + " or " + o.totals);
  std::fprintf(stderr, "calibrating %zu shapes on %s (%zu skipped), device: %u units, dispatch %.1f us\n", cases.size(),
               o.platform.c_str(), done.size(), cal.device().compute_units, cal.device().dispatch_us);

  double total_work = 0, done_work = 0;
  for (const shape_case& c : cases) total_work += work_of(c.shape);
  std::size_t finished = 0;
  for (const shape_case& c : cases) {
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
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "coexec-calibrate: " << e.what() << "\n";
    return 2;
  }
}
