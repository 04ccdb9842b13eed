#pragma once
// predicted: the planner that predicts instead of timing. For a new shape it predicts the CPU
// time t_cpu(s) of channels [0, s) and the device time t_gpu(s) of [s, N) (dispatch and
// completion included: the device model is trained on, and the roofline adds, launch-to-seen-
// complete times) and picks the aligned split minimising max(t_cpu, t_gpu).
//
// The CPU part starts once the host has enqueued the device part, so a co-executed split takes
// max(dispatch + t_cpu(s), t_gpu(s)), the dispatch measured by every run (plan/online.hpp).
//
// t_cpu rises and t_gpu falls with s, so the best split sits where they cross: a bisection over
// the aligned candidates finds the crossing in log2(N / granule) steps, then the two neighbours
// on each side and the endpoints 0 (device only) and N (CPU only) are scored, since tree models
// are monotone only roughly. About 30 predictions for N = 4096 instead of 514.
//
// Operators cut along several dimensions (conv2d: output channels or output rows, as
// Features::dimensions lists) get that search per dimension, and the plan is the dimension and
// split with the lower predicted time. Both share one correction per side: a model's bias is
// the side's, whatever the cut.
//
// A shape's first plan starts from each side's measured time alone: runs given by anchor_with()
// (a pipeline times each side over its whole network), else runs choose() makes itself
// (correction_options::anchor_endpoints).
//
// Plans are cached per shape. observe() (the operators call it after every planned run) learns
// a per-side correction of the predictions and the overhead of co-executing from the measured
// times (plan/online.hpp), keeps the measured single-side times current, and plans the shape
// again when a correction moved. A co-executed plan measured slower than the faster single side
// then gives way to that side. Now and then choose() runs an alternative to the plan instead,
// a few times until it is warm (correction_options::explore_every, explore_runs): a side it does
// not use, or the best co-executed split for a plan on one side, so that what was once timed in a
// slow period is timed again.
//
// Models (any type with `double predict_us(predict::side, const Features::vector&) const`):
//   tree_model      trained tree ensembles: a model file, or a generated header
//   roofline_model  max(FLOPs / peak, bytes / bandwidth) + fixed costs, from a short
//                   micro-calibration cached on disk: the fallback for devices without a model
//   device_model    (the default) the shipped trees for the device if coexec has them, else
//                   the roofline; chosen at the first plan from the operator's context
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "coexec/cpu/gemm.hpp"
#include "coexec/cpu/thread_pool.hpp"
#include "coexec/detail/hash.hpp"
#include "coexec/gpu/gemm.hpp"
#include "coexec/plan/online.hpp"
#include "coexec/plan/split.hpp"
#include "coexec/plan/split_plan.hpp"
#include "coexec/predict/features.hpp"
#include "coexec/predict/model_file.hpp"
#include "coexec/predict/models/shipped.hpp"
#include "coexec/runtime/binary_cache.hpp"

namespace coexec::plan {

/// Trained tree ensembles "<op>/cpu" and "<op>/gpu", each reading its features by name.
template <class Features = predict::linear_features>
class tree_model {
 public:
  /// From a model set (a model file); errc::invalid_argument when a side's model is missing or
  /// takes a feature Features does not have.
  explicit tree_model(predict::model_set set) : owned_(std::make_shared<const predict::model_set>(std::move(set))) {
    const auto bind_side = [&](predict::side s) {
      const predict::model& m = owned_->at(std::string(Features::op) + '/' + std::string(to_string(s)));
      std::vector<std::string_view> names(m.features.begin(), m.features.end());
      return bind(names, m.trees.view());
    };
    sides_ = {bind_side(predict::side::cpu), bind_side(predict::side::gpu)};
  }

  /// From generated headers (predict/models/*.hpp); the arrays must outlive the model.
  tree_model(predict::models::model_ref cpu, predict::models::model_ref gpu)
      : sides_{bind(cpu.features, cpu.model), bind(gpu.features, gpu.model)} {}

  /// Reads a model file (predict::load_model_set) and binds its "op/cpu" and "op/gpu" models.
  static tree_model load(const std::filesystem::path& file) { return tree_model(predict::load_model_set(file)); }

  /// Predicted time of side `s` in microseconds for a feature vector.
  double predict_us(predict::side s, const typename Features::vector& features) const noexcept {
    const bound& side = sides_[static_cast<std::size_t>(s)];
    std::array<double, Features::names.size()> inputs;
    for (std::size_t i = 0; i < side.columns.size(); ++i) inputs[i] = features[side.columns[i]];
    return side.model.predict(std::span(inputs.data(), side.columns.size()));
  }

 private:
  // A model and, for each of its inputs, the Features column it reads.
  struct bound {
    predict::ensemble_view model;
    std::vector<std::size_t> columns;
  };

  static bound bind(std::span<const std::string_view> names, predict::ensemble_view model) {
    require(model.valid() && model.feature_count == names.size(), "tree_model: invalid model");
    bound b{model, {}};
    for (const std::string_view name : names) {
      const auto found = std::find(Features::names.begin(), Features::names.end(), name);
      require(found != Features::names.end(),
              "tree_model: the model reads feature '" + std::string(name) + "', which " + std::string(Features::op) + " lacks");
      b.columns.push_back(static_cast<std::size_t>(found - Features::names.begin()));
    }
    return b;
  }

  std::shared_ptr<const predict::model_set> owned_;  // what the views of a loaded model point into
  std::array<bound, 2> sides_;
};

/// Roofline per side: max(critical FLOPs at peak, bytes at bandwidth) plus a fixed cost (the
/// CPU's thread wake-up, the device's dispatch, a feature of its own).
struct roofline_rates {
  /// @{
  double gflops = 1, gbytes_per_s = 1, fixed_us = 0;  ///< peak compute, peak bandwidth, fixed cost per run (CPU only: the device's is the dispatch_us feature)
  /// @}
};

template <class Features = predict::linear_features>
/// The fallback model: each side's time is max(FLOPs at peak, bytes at bandwidth) plus a fixed
/// cost, from rates measured by a short micro-calibration (cached()).
class roofline_model {
 public:
  /// A model from known rates of the CPU side and the device side.
  roofline_model(roofline_rates cpu, roofline_rates gpu) : cpu_(cpu), gpu_(gpu) {}

  /// Predicted time of side `s` in microseconds: the busiest worker's FLOPs at its share of the
  /// peak, or the bytes at the bandwidth, whichever is slower, plus the fixed cost.
  double predict_us(predict::side s, const typename Features::vector& f) const noexcept {
    using F = Features;
    const bool on_cpu = s == predict::side::cpu;
    const roofline_rates& r = on_cpu ? cpu_ : gpu_;
    // Peaks are of the whole side; the busiest worker sets its pace.
    const double busy_flops = f[F::critical_flops] * (on_cpu ? f[F::threads] : f[F::compute_units]);
    const double fixed = on_cpu ? r.fixed_us : f[F::dispatch_us];
    return std::max(busy_flops / (r.gflops * 1e3), f[F::bytes] / (r.gbytes_per_s * 1e3)) + fixed;
  }

  const roofline_rates& cpu() const noexcept { return cpu_; }  ///< the CPU side's rates

  /// cached() for what `op` runs on: op.context() and op.cpu_threads().
  template <class Op>
    requires requires(Op& op) { op.context(); }
  static roofline_model for_op(Op& op) {
    return cached(op.context(), op.cpu_threads());
  }
  const roofline_rates& gpu() const noexcept { return gpu_; }  ///< the device side's rates

  /// The rates of `ctx`'s device and `cpu_threads` CPU threads: read from
  /// `<directory>/roofline-<hash>.txt` (keyed by device, driver, threads and coexec version),
  /// else measured (under 2 s) and written there. An empty directory only measures.
  static roofline_model cached(const runtime::context& ctx, std::size_t cpu_threads,
                               const std::filesystem::path& directory = runtime::binary_cache::default_directory()) {
    const auto& caps = ctx.caps();
    const std::string key = caps.platform_name + " | " + caps.name + " | " + caps.driver_version + " | " +
                            std::to_string(caps.compute_units) + " units | " + std::to_string(cpu_threads) +
                            " threads | coexec " + COEXEC_VERSION_STRING;
    char name[40];
    std::snprintf(name, sizeof name, "roofline-%016llx.txt", static_cast<unsigned long long>(coexec::detail::fnv1a(key)));
    const std::filesystem::path file = directory.empty() ? std::filesystem::path() : directory / name;
    if (auto known = read(file, key)) return *known;
    roofline_model measured = measure(ctx, cpu_threads);
    write(file, key, measured);
    return measured;
  }

  /// Times the real kernels on a compute-bound and a memory-bound shape per side.
  static roofline_model measure(const runtime::context& ctx, std::size_t cpu_threads) {
    static constexpr gemm_shape compute_bound{256, 512, 512}, memory_bound{1, 4096, 2048};
    const auto rates = [](double compute_us, double memory_us, double fixed_us) {
      const auto [m, n, k] = memory_bound;
      const double flops = 2.0 * compute_bound.m * compute_bound.n * compute_bound.k;
      const double bytes = sizeof(float) * double(m * k + n * k + m * n);
      return roofline_rates{flops / (std::max(compute_us - fixed_us, 1e-3) * 1e3),
                            bytes / (std::max(memory_us - fixed_us, 1e-3) * 1e3), fixed_us};
    };
    cpu::thread_pool pool(cpu_threads);
    const double cpu_wake_us = best_of_us([&] { pool.run([](std::size_t, std::size_t) {}); });
    const roofline_rates cpu = rates(time_cpu(pool, compute_bound), time_cpu(pool, memory_bound), cpu_wake_us);
    const double dispatch_us = predict::device_profile::of(ctx).dispatch_us;
    const roofline_rates gpu = rates(time_device(ctx, compute_bound), time_device(ctx, memory_bound), dispatch_us);
    return {cpu, gpu};
  }

 private:
  template <class F>
  static double best_of_us(F&& run, int runs = 5) {
    run();  // warm-up: first-touch pages, program builds
    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < runs; ++r) {
      const auto start = std::chrono::steady_clock::now();
      run();
      best = std::min(best, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
  }

  static double time_cpu(cpu::thread_pool& pool, gemm_shape s) {
    std::vector<float> x(s.m * s.k, 1.0f), w(s.n * s.k, 1.0f), y(s.m * s.n);
    std::vector<float> panels(memory::packed_size<float>(s.n, s.k));
    memory::pack_panels(w.data(), s.n, s.k, panels.data());
    cpu::gemm_args<float> args;
    args.x = x.data();
    args.ldx = s.k;
    args.panels = panels.data();
    args.y = y.data();
    args.ldy = s.n;
    args.shape = s;
    return best_of_us([&] { cpu::packed_gemm{}(pool, args, 0, s.n); });
  }

  static double time_device(const runtime::context& ctx, gemm_shape s) {
    const std::vector<float> x(s.m * s.k, 1.0f), w(memory::packed_size<float>(s.n, s.k), 1.0f);
    const cl::Buffer x_dev = gpu::make_buffer<float>(ctx, x.size()), w_dev = gpu::make_buffer<float>(ctx, w.size()),
                     y_dev = gpu::make_buffer<float>(ctx, s.m * s.n);
    gpu::write_rows(ctx, x_dev, 0, x.data(), 1, x.size(), x.size());
    gpu::write_rows(ctx, w_dev, 0, w.data(), 1, w.size(), w.size()).wait();
    gpu::gemm_launcher<float> launcher(ctx, gpu::default_config<float>(ctx.caps(), s), activation::none, false);
    sync::completion done(ctx, sync::completion::mode::event_polling);
    const gpu::gemm_operands<float> ops{{x_dev}, s.k, {w_dev}, {}, {y_dev}, s.n};
    return best_of_us([&] { done.wait(launcher.enqueue(ops, s, done)); });
  }

  // File: "# coexec roofline: <key>", then "cpu <gflops> <GB/s> <fixed us>" and "gpu ...".
  static std::optional<roofline_model> read(const std::filesystem::path& file, const std::string& key) {
    std::ifstream in(file);
    std::string line, side_name;
    roofline_rates cpu, gpu;
    if (file.empty() || !std::getline(in, line) || line != "# coexec roofline: " + key) return std::nullopt;
    for (roofline_rates* r : {&cpu, &gpu})
      if (!(in >> side_name >> r->gflops >> r->gbytes_per_s >> r->fixed_us) || !(r->gflops > 0 && r->gbytes_per_s > 0))
        return std::nullopt;
    return roofline_model(cpu, gpu);
  }

  /// Best effort, like the binary cache: through a temporary file and a rename.
  static void write(const std::filesystem::path& file, const std::string& key, const roofline_model& model) {
    if (file.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    auto temporary = file;
    temporary += ".tmp" + std::to_string(std::random_device{}());
    {
      std::ofstream out(temporary);
      out << "# coexec roofline: " << key << '\n';
      for (const auto& [name, r] : {std::pair{"cpu", model.cpu_}, std::pair{"gpu", model.gpu_}})
        out << name << ' ' << r.gflops << ' ' << r.gbytes_per_s << ' ' << r.fixed_us << '\n';
      if (!out) return;
    }
    std::filesystem::rename(temporary, file, ec);
    if (ec) std::filesystem::remove(temporary, ec);
  }

  roofline_rates cpu_, gpu_;
};

/// The shipped trees for the operator's device when coexec has them, else its roofline.
template <class Features = predict::linear_features>
class device_model {
 public:
  template <class Model>
  /// Wraps a tree_model or a roofline_model.
  explicit device_model(Model model) : model_(std::move(model)) {}

  /// Chosen from what `op` runs on: op.context() and op.cpu_threads().
  template <class Op>
    requires requires(Op& op) { op.context(); }
  static device_model for_op(Op& op) {
    if (const auto* shipped = predict::models::shipped(Features::op, op.context().caps(), op.cpu_threads()))
      return device_model(tree_model<Features>(shipped->cpu, shipped->gpu));
    return device_model(roofline_model<Features>::for_op(op));
  }

  /// Predicted time of side `s` in microseconds, from the wrapped model.
  double predict_us(predict::side s, const typename Features::vector& f) const noexcept {
    return std::visit([&](const auto& model) { return model.predict_us(s, f); }, model_);
  }

  bool is_roofline() const noexcept { return std::holds_alternative<roofline_model<Features>>(model_); }  ///< true when no shipped trees fit and the roofline is used

 private:
  std::variant<tree_model<Features>, roofline_model<Features>> model_;
};

/// Plans splits for shapes `Key` from `Model`'s predictions; a default-constructed planner
/// gets its model at the first plan from Model::for_op(op). Operators cut along one dimension
/// (linear) get a split; those cut along several (conv2d: channels or rows) get a split_plan,
/// the best split of each dimension compared on its predicted time.
template <class Key = gemm_shape, class Model = device_model<typename predict::features_of<Key>::type>>
class predicted {
 public:
  using features = typename predict::features_of<Key>::type;  ///< the feature set of `Key`'s operator
  /// True when the operator can be cut along more than one dimension.
  static constexpr bool multi_dimensional = features::dimensions.size() > 1;
  /// What choose() returns: a split point, or a split_plan for multi-dimensional operators.
  using choice = std::conditional_t<multi_dimensional, split_plan, std::size_t>;

  predicted() = default;
  /// A planner with a given model and correction options.
  explicit predicted(Model model, correction_options options = {}) : model_(std::move(model)), options_(options) {}

  /// The split to run `key` with: its plan, or once in a while an alternative to it
  /// (correction_options::explore_every where op.split_moves_weights() is false, else
  /// explore_every_unshared). `op` offers
  /// what features::setup asks and, for one-dimensional operators, columns() and
  /// split_granule() (and optionally tile_granule(), a multiple of it that candidates then step
  /// by), else extent(split_dimension) and split_granule(split_dimension). With
  /// run() and last_record() the endpoints are anchored, unless anchor_with() gave runs of both.
  template <class Op>
  choice choose(const Key& key, Op& op) {
    std::lock_guard lock(mutex_);
    if (auto found = plans_.find(key); found != plans_.end()) return result(next_run(key, found->second, op));
    if (!model_) {
      if constexpr (requires { Model::for_op(op); })
        model_.emplace(Model::for_op(op));
      else
        throw error(errc::invalid_argument, "plan::predicted: no model given, and this Model cannot choose one");
    }
    plan p{features::setup(key, op)};
    for (const split_dimension d : features::dimensions) {
      if constexpr (multi_dimensional)
        p.extents[index(d)] = {op.extent(d), op.split_granule(d)};
      else
        p.extents[index(d)] = {op.columns(), candidate_granule(op)};
    }
    if (!anchor_on_context_runs(key, p))
      if constexpr (requires { op.last_record(); })
        if (options_.anchor_endpoints) anchor(key, p, op);
    plan_split(key, p);
    return result(plans_.emplace(key, p).first->second.chosen);
  }

  /// Learns from a planned run of `key` (record: split, cpu_seconds, device_seconds,
  /// total_seconds, device_exact, as ops::run_record, dispatch_seconds where it has one, and
  /// dimension for multi-dimensional operators), plans the shape again when the correction
  /// moved, and moves a co-executed plan measured slower than the faster single side to that side.
  template <class Record>
  void observe(const Key& key, const Record& run) {
    std::lock_guard lock(mutex_);
    auto found = plans_.find(key);
    if (found == plans_.end()) return;
    plan& p = found->second;
    split_plan at{features::dimensions[0], run.split};
    if constexpr (requires { run.dimension; }) at.dimension = run.dimension;
    // A run of another split ends an exploration: the operator ran what it could (one whose
    // device kernel is gone gives the CPU everything), and waiting for the exploration's own
    // runs would keep choose() returning it for good.
    if (p.exploring && !(p.exploring->at == at)) p.exploring.reset();
    // A co-executed split placed or explored teaches nothing until it is warm
    // (correction_options::settle_runs, explore_runs).
    if (co_executed(p, at)) {
      const bool explored = p.exploring && p.exploring->at == at;
      std::optional<typename plan::exploration>& warming = explored ? p.exploring : p.settling;
      if (warming && warming->at == at) {
        if (!warming->runs.done_after(run.total_seconds)) return;
        if (explored) p.last_exploration_runs = warming->runs.runs();
        warming.reset();
      }
    }
    bool endpoint_moved = false;
    if (co_executed(p, at))
      learn_co_executed(key, p, at, run);
    else
      endpoint_moved = learn_single_side(key, p, at, run);
    if (p.exploring && p.exploring->at == at && p.exploring->runs.done_after(run.total_seconds)) {
      p.last_exploration_runs = p.exploring->runs.runs();
      p.exploring.reset();
    }
    if (endpoint_moved || p.correction.stale(options_)) plan_split(key, p);
    guard(p);
  }

  /// Remembers a run of one side alone of a shape not yet planned (split 0: the device; the whole
  /// extent: the CPU), timed where it really runs, e.g. by a pipeline's passes over the network on
  /// each side alone. Once both sides have such runs, the first choose() anchors on them instead
  /// of timing each side in a loop of its own runs, where its data stays in cache (on pocl-2,
  /// MobileNetV2's b8 depthwise layer took 157 µs on the CPU in the network, 94 µs in a loop).
  /// The last recent_minimum::window runs of each side count; ignored once `key` is planned.
  template <class Record>
  void anchor_with(const Key& key, const Record& run) {
    std::lock_guard lock(mutex_);
    if (plans_.contains(key)) return;
    std::vector<context_run>& runs = context_runs_[key][run.split == 0 ? 0 : 1];
    if (runs.size() == recent_minimum::window) runs.erase(runs.begin());
    runs.push_back({run.cpu_seconds, run.device_seconds, run.total_seconds, dispatch_us_of(run) * 1e-6});
  }

  /// Corrected predictions of each side of `key` at `split`, for reports and tests; only for
  /// shapes choose() has planned.
  struct side_seconds {
    /// @{
    double cpu = 0, gpu = 0;  ///< each side's corrected prediction in seconds
    /// @}
    /// @{
    double dispatch = 0, overhead = 0;  ///< the learned enqueue before the CPU part and cost of co-executing, in seconds; 0 where one side has all the work
    /// @}
    double total() const noexcept { return std::max(dispatch + cpu, gpu) + overhead; }  ///< the slower side plus the overhead
  };
  /// Corrected predictions for `key` at `at`; `key` must have been planned (std::out_of_range otherwise).
  side_seconds estimate(const Key& key, choice at) const {
    std::lock_guard lock(mutex_);
    const plan& p = plans_.at(key);
    const split_plan where = as_plan(at);
    return {corrected_us(key, p, predict::side::cpu, where) * 1e-6, corrected_us(key, p, predict::side::gpu, where) * 1e-6,
            dispatch_us(p, where) * 1e-6, overhead_us(p, where) * 1e-6};
  }

  /// The plan `key` runs with between explorations (what choose() returns but for those);
  /// nullopt before its first choose(). Pipelines replay it in streamed runs.
  std::optional<choice> planned(const Key& key) const {
    std::lock_guard lock(mutex_);
    const auto found = plans_.find(key);
    return found == plans_.end() ? std::nullopt : std::optional<choice>(result(found->second.chosen));
  }

  /// Model evaluations so far (planning is meant to need few).
  std::size_t predictions() const noexcept { return predictions_; }
  const std::optional<Model>& model() const noexcept { return model_; }  ///< the model in use; empty before the first plan of a default-constructed planner

  /// Forgets every plan and its corrections (the model stays), so each shape is planned again.
  void clear() {
    std::lock_guard lock(mutex_);
    plans_.clear();
    context_runs_.clear();
  }

 private:
  struct extent_granule {
    std::size_t extent = 0, granule = 1;
  };
  struct plan {
    typename features::setup_type setup;
    std::array<extent_granule, std::size(all_dimensions)> extents{};  // per split_dimension; extent 0: not planned along it
    split_plan chosen{};
    shape_correction correction{};  // per side, shared by the dimensions: a bias is the side's, not the cut's
    bool placed = false;  ///< chosen holds a plan
    // The endpoints as measured, anchored and then refreshed by every single-side run: later
    // corrections come from co-executed runs (where the sides slow each other down) and must not
    // talk the plan into a single side that is slower than the other single side really was.
    // The least of recent runs, not the latest one, so that one noisy run does not move the plan.
    recent_minimum measured_device_only_us{}, measured_cpu_only_us{};
    recent_minimum measured_chosen_us{};  // runs of `chosen` while it co-executes: what the guard compares
    // Runs since the plan last left a single side or explored, and explorations so far: a plan
    // explores its two alternatives in turn (see due_exploration).
    std::size_t unexplored_runs = 0, explorations = 0;
    /// An exploration in progress, which runs until its alternative is warm.
    struct exploration {
      split_plan at;  ///< the alternative it runs
      warm_up runs;   ///< its runs so far
    };
    std::optional<exploration> exploring{};
    // A co-executed split just placed, timed like an exploration until it is warm (see observe).
    std::optional<exploration> settling{};
    int last_exploration_runs = 0;  // runs the last one took (0: none yet); the next one waits in proportion
    // The best co-executed split as of the last plan_split (none where the extents allow none):
    // what a plan on one side explores.
    std::optional<split_plan> best_co_executed{};
    // The model's uncorrected word per (dimension, split, side): a shape is planned again after
    // almost every run as its corrections move, and tree evaluations would cost µs each time.
    mutable std::map<std::tuple<split_dimension, std::size_t, predict::side>, double> predicted_us{};

    std::size_t extent(split_dimension d) const { return extents[index(d)].extent; }
  };

  // A run of one side alone given to anchor_with(), as learn_single_side() reads it.
  struct context_run {
    double cpu_seconds = 0, device_seconds = 0, total_seconds = 0, dispatch_seconds = 0;
  };

  static constexpr std::size_t index(split_dimension d) noexcept { return static_cast<std::size_t>(d); }
  // What a one-dimensional plan's candidates step by: op.tile_granule() where it offers one
  // (splits that leave the device whole work-group tiles: a part tile costs it a whole one, a
  // step that a factor per side cannot model), else op.split_granule().
  template <class Op>
  static std::size_t candidate_granule(const Op& op) {
    if constexpr (requires { op.tile_granule(); }) return op.tile_granule();
    else return op.split_granule();
  }
  static choice result(split_plan at) noexcept {
    if constexpr (multi_dimensional) return at;
    else return at.split;
  }
  static split_plan as_plan(choice at) noexcept {
    if constexpr (multi_dimensional) return at;
    else return {features::dimensions[0], at};
  }

  // Uncorrected prediction of side `s` at `at`; a side without work takes no time.
  double predict_us(const Key& key, const plan& p, predict::side s, split_plan at) const {
    const std::size_t count = s == predict::side::cpu ? at.split : p.extent(at.dimension) - at.split;
    if (count == 0) return 0;
    const auto [known, fresh] = p.predicted_us.try_emplace({at.dimension, at.split, s});
    if (!fresh) return known->second;
    ++predictions_;
    if constexpr (multi_dimensional)
      known->second = model_->predict_us(s, features::of(s, key, at.dimension, count, p.setup));
    else
      known->second = model_->predict_us(s, features::of(s, key, count, p.setup));
    return known->second;
  }

  double corrected_us(const Key& key, const plan& p, predict::side s, split_plan at) const {
    const side_correction& c = s == predict::side::cpu ? p.correction.cpu : p.correction.gpu;
    return c.factor() * predict_us(key, p, s, at);
  }

  // True when both sides have work at `at`.
  static bool co_executed(const plan& p, split_plan at) noexcept { return at.split > 0 && at.split < p.extent(at.dimension); }

  static double overhead_us(const plan& p, split_plan at) noexcept {
    return co_executed(p, at) ? p.correction.overhead_us.value() : 0;
  }
  static double dispatch_us(const plan& p, split_plan at) noexcept {
    return co_executed(p, at) ? p.correction.dispatch_us.value() : 0;
  }
  // The CPU side's corrected time, from the run's start: the host enqueues the device part first.
  double cpu_path_us(const Key& key, const plan& p, split_plan at) const {
    return dispatch_us(p, at) + corrected_us(key, p, predict::side::cpu, at);
  }
  // The host's enqueue of a run's device part, as the record tells it (0 where it does not).
  template <class Record>
  static double dispatch_us_of(const Record& run) noexcept {
    if constexpr (requires { run.dispatch_seconds; }) return run.dispatch_seconds * 1e6;
    else return 0;
  }
  // Every run with a device part measures the host's enqueue of it.
  template <class Record>
  void learn_dispatch(plan& p, const Record& run) const {
    p.correction.dispatch_us.add(dispatch_us_of(run), options_.weight);
  }

  // A co-executed run corrects both sides and teaches the dispatch and the overhead, the time its
  // slower side does not explain. With ops::co_execute a device that finished last was timed over
  // the whole run, so such a run teaches an overhead of 0: the device's correction carries its cost.
  template <class Record>
  void learn_co_executed(const Key& key, plan& p, split_plan at, const Record& run) {
    learn_dispatch(p, run);
    const double cpu_us = run.cpu_seconds * 1e6, device_us = run.device_seconds * 1e6, total_us = run.total_seconds * 1e6;
    const double measured_cpu_path_us = dispatch_us_of(run) + cpu_us;
    p.correction.cpu.exact(cpu_us / predict_us(key, p, predict::side::cpu, at), options_);
    const double ratio = device_us / predict_us(key, p, predict::side::gpu, at);
    run.device_exact ? p.correction.gpu.exact(ratio, options_) : p.correction.gpu.upper_bound(ratio, options_);
    // A device that finished first is known only by a bound: its corrected prediction, just capped by it, stands in.
    const double device_time_us = run.device_exact ? device_us : corrected_us(key, p, predict::side::gpu, at);
    p.correction.overhead_us.add(total_us - std::max(measured_cpu_path_us, device_time_us), options_.weight);
    if (at == p.chosen) p.measured_chosen_us.add(total_us);
  }

  // A run of one side alone (split 0 or the extent) corrects that side and refreshes its measured
  // endpoint. Its time is exact even for a device that finished first: no CPU part held the host.
  // True when the measured endpoint time moved.
  template <class Record>
  bool learn_single_side(const Key& key, plan& p, split_plan at, const Record& run) {
    const bool device = at.split == 0;
    const double ratio = (device ? run.device_seconds : run.cpu_seconds) * 1e6 /
                         predict_us(key, p, device ? predict::side::gpu : predict::side::cpu, at);
    if (!(ratio > 0 && std::isfinite(ratio))) return false;  // nothing measurable: keep the model's word
    (device ? p.correction.gpu : p.correction.cpu).exact(ratio, options_);
    if (device) learn_dispatch(p, run);
    recent_minimum& measured = device ? p.measured_device_only_us : p.measured_cpu_only_us;
    const double before = measured.value();
    measured.add(run.total_seconds * 1e6);
    return measured.value() != before;
  }

  // Times each side alone, the device first (a warm-up, then timed runs until it is warm:
  // warm_up_for) and learns from it. The endpoints are the same runs whatever the dimension, so
  // the first one's serve.
  template <class Op>
  void anchor(const Key& key, plan& p, Op& op) {
    const split_dimension d = features::dimensions[0];
    for (const std::size_t split : {std::size_t{0}, p.extent(d)}) {
      op.run(result({d, split}));
      warm_up timed = warm_up_for(p, {d, split}, options_.anchor_runs);
      for (int attempt = 0; attempt < std::max(options_.anchor_runs, options_.anchor_max_runs); ++attempt) {
        op.run(result({d, split}));
        // A device part recomputed on the CPU timed the CPU, not the device.
        if (op.last_record().device_recomputed) continue;
        learn_single_side(key, p, {d, split}, op.last_record());
        if (timed.done_after(op.last_record().total_seconds)) break;
      }
    }
  }

  // Anchors `p` on the runs anchor_with() gave for `key`, when it gave both sides'; true if it did.
  bool anchor_on_context_runs(const Key& key, plan& p) {
    const auto found = context_runs_.find(key);
    if (found == context_runs_.end()) return false;
    const auto [device_runs, cpu_runs] = std::move(found->second);
    context_runs_.erase(found);
    if (device_runs.empty() || cpu_runs.empty()) return false;
    const split_dimension d = features::dimensions[0];
    for (const context_run& run : device_runs) learn_single_side(key, p, {d, 0}, run);
    for (const context_run& run : cpu_runs) learn_single_side(key, p, {d, p.extent(d)}, run);
    return true;
  }

  // How long anchoring or exploring times `at`: at least `min_runs` runs, and the CPU alone at
  // least anchor_seconds of them (correction_options::anchor_seconds: its slow spell after device
  // runs), then while the runs get faster.
  warm_up warm_up_for(const plan& p, split_plan at, int min_runs) const {
    const bool cpu_alone = at.split == p.extent(at.dimension);
    return warm_up(min_runs, cpu_alone ? options_.anchor_seconds : 0.0, options_.anchor_max_runs);
  }

  // Predicted time of `at`, the measured one at a measured endpoint.
  double total_us(const Key& key, const plan& p, split_plan at) const {
    if (at.split == 0 && p.measured_device_only_us.sampled()) return p.measured_device_only_us.value();
    if (at.split == p.extent(at.dimension) && p.measured_cpu_only_us.sampled()) return p.measured_cpu_only_us.value();
    return std::max(cpu_path_us(key, p, at), corrected_us(key, p, predict::side::gpu, at)) + overhead_us(p, at);
  }

  // A split and its predicted time (infinity: none).
  struct scored_split {
    split_plan at{};
    double us = std::numeric_limits<double>::infinity();
  };
  // The best split of all, and the best co-executed one.
  struct best_splits {
    scored_split any{}, co_executed{};
    void offer(scored_split candidate, bool co_executes) noexcept {
      if (candidate.us < any.us) any = candidate;
      if (co_executes && candidate.us < co_executed.us) co_executed = candidate;
    }
  };

  // The best aligned splits along `d` by predicted time, offered to `best`.
  void best_along(const Key& key, const plan& p, split_dimension d, best_splits& best) const {
    // Not a structured binding: lambdas capture those only from clang 16 on.
    const std::size_t extent = p.extents[index(d)].extent, granule = p.extents[index(d)].granule;
    // Candidate i is split i * granule, the last one the extent.
    const std::size_t last = (extent + granule - 1) / granule;
    const auto split_of = [&](std::size_t i) { return split_plan{d, i == last ? extent : i * granule}; };
    // Invariant: the CPU is faster at lo (0: it has nothing), not at hi (the device has nothing).
    std::size_t lo = 0, hi = last;
    while (hi - lo > 1) {
      const std::size_t mid = lo + (hi - lo) / 2;
      const split_plan at = split_of(mid);
      (cpu_path_us(key, p, at) < corrected_us(key, p, predict::side::gpu, at) ? lo : hi) = mid;
    }
    // Tree models are monotone only roughly: the crossing's neighbours and both endpoints compete.
    for (const std::size_t i : {std::size_t{0}, lo == 0 ? 0 : lo - 1, lo, hi, std::min(hi + 1, last), last})
      best.offer({split_of(i), total_us(key, p, split_of(i))}, i > 0 && i < last);
  }

  void plan_split(const Key& key, plan& p) {
    best_splits found;
    for (const split_dimension d : features::dimensions)
      if (p.extent(d) > 0) best_along(key, p, d, found);
    const scored_split best = found.any;
    p.best_co_executed.reset();
    if (std::isfinite(found.co_executed.us)) p.best_co_executed = found.co_executed.at;
    // Re-plans keep the current plan unless the new one is clearly better: each move can cost
    // more than it saves (on discrete devices it moves weight panels between the sides).
    const double current_us = p.placed ? total_us(key, p, p.chosen) : std::numeric_limits<double>::infinity();
    const bool better = best.us < current_us / (1 + options_.replan_change);
    if (better) place(p, best.at);
    p.placed = true;
    p.correction.planned(better ? best.us : current_us);
  }

  // A moved plan ends an exploration, and one that leaves a single side counts its runs towards
  // exploring afresh: the side it left was timed just now. One moving between co-executed splits
  // goes on counting, since neither side alone was: a plan whose split moves every few runs would
  // never explore (on pocl-16 one wandered among co-executed splits at 35-45 µs for 16,000 runs
  // while the CPU alone, last timed in a slow spell, takes 11). A co-executed one settles first
  // (see observe).
  void place(plan& p, split_plan at) const noexcept {
    if (at == p.chosen) return;
    if (!(p.placed && co_executed(p, p.chosen) && co_executed(p, at))) p.unexplored_runs = p.explorations = 0;
    p.chosen = at;
    p.settling.reset();
    if (co_executed(p, at)) p.settling = typename plan::exploration{at, warm_up_for(p, at, options_.settle_runs)};
    p.measured_chosen_us = {};
    p.exploring.reset();
  }

  // The split of this run of `p`: its plan, or an exploration in progress or due.
  template <class Op>
  split_plan next_run(const Key& key, plan& p, const Op& op) {
    if (p.exploring) return p.exploring->at;
    std::size_t explore_every = options_.explore_every_unshared;  // for operators that do not say
    if constexpr (requires { op.split_moves_weights(); })
      if (!op.split_moves_weights()) explore_every = options_.explore_every;
    if (const std::optional<split_plan> explored = due_exploration(key, p, explore_every)) return *explored;
    ++p.unexplored_runs;
    return p.chosen;
  }

  // The split to explore once the plan, since it last left a single side or explored, has run
  // explore_every times the alternative's predicted time over the plan's, times the runs the
  // exploration will take (the cost bound of correction_options::explore_every). A co-executed
  // plan explores each side alone in turn, the CPU first; a plan on one side, in turn, the other
  // side and the best co-executed split of its last plan_split: a learned overhead or the guard
  // may have moved it off co-executing in a slow period, and no single-side run tells. The
  // exploration then runs until its alternative is warm (correction_options::explore_runs).
  std::optional<split_plan> due_exploration(const Key& key, plan& p, std::size_t explore_every) const {
    if (explore_every == 0 || p.unexplored_runs < explore_every) return std::nullopt;
    const split_dimension d = p.chosen.dimension;
    const split_plan device_alone{d, 0}, cpu_alone{d, p.extent(d)};
    const bool first_turn = p.explorations % 2 == 0;
    split_plan alternative = first_turn ? cpu_alone : device_alone;
    if (p.chosen == cpu_alone || p.chosen == device_alone) {
      const split_plan other_side = p.chosen == cpu_alone ? device_alone : cpu_alone;
      alternative = first_turn || !p.best_co_executed ? other_side : *p.best_co_executed;
    }
    const double alternative_us = total_us(key, p, alternative);
    const double relative_cost = std::max(1.0, alternative_us / total_us(key, p, p.chosen));
    // Its runs: as many as the last one took, and at least what its warm-up asks (the CPU alone
    // runs anchor_seconds: hundreds of runs of a 20 µs layer, the first exploration's too).
    const warm_up runs = warm_up_for(p, alternative, std::max(1, options_.explore_runs));
    const int expected_runs = std::max(runs.least_runs(alternative_us * 1e-6), p.last_exploration_runs);
    if (static_cast<double>(p.unexplored_runs) < static_cast<double>(explore_every) * relative_cost * expected_runs) return std::nullopt;
    p.unexplored_runs = 0;
    ++p.explorations;
    p.exploring = {alternative, runs};
    return alternative;
  }

  // The guard: a co-executed plan whose measured time (least of recent runs) is above the faster
  // measured single side's gives way to that side. Corrected predictions alone can keep it: a
  // multiplier per side and one overhead per shape, learned over several splits, need not fit
  // this split's time.
  void guard(plan& p) const {
    // A side never measured reads infinity, so it is never the faster one.
    const double cpu_only_us = p.measured_cpu_only_us.value(), device_only_us = p.measured_device_only_us.value();
    if (p.measured_chosen_us.sampled() && p.measured_chosen_us.value() > std::min(cpu_only_us, device_only_us))
      place(p, {p.chosen.dimension, cpu_only_us < device_only_us ? p.extent(p.chosen.dimension) : 0});
  }

  std::optional<Model> model_;
  correction_options options_;
  mutable std::mutex mutex_;
  std::map<Key, plan> plans_;
  std::map<Key, std::array<std::vector<context_run>, 2>> context_runs_;  // anchor_with()'s, per shape: the device's, the CPU's
  mutable std::size_t predictions_ = 0;
};

/// The roofline planner: no trained model, a micro-calibration at first use.
template <class Key = gemm_shape>
using roofline = predicted<Key, roofline_model<typename predict::features_of<Key>::type>>;

}  // namespace coexec::plan
