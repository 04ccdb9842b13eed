#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <span>
#include <thread>

#include "coexec/pipe/pipeline.hpp"
#include "coexec/plan/predicted.hpp"
#include "attention_reference.hpp"
#include "linear_reference.hpp"
#include "support.hpp"

using namespace coexec;

namespace {

// Puts half of every layer's output channels on each side, so that every run has device parts
// to gate (a timing planner may give these tiny layers to one side).
struct half_split {
  template <class Key, class Op>
  std::size_t choose(const Key&, Op& op) {
    return std::max<std::size_t>(1, op.columns() / 2 / op.split_granule()) * op.split_granule();
  }
};

using conv = ops::conv2d<float, cpu::packed_conv, half_split>;
using dense = ops::linear<float, cpu::packed_gemm, half_split>;
using reference_tensor = std::vector<double>;

reference_tensor reference_conv(const conv2d_shape& s, const reference_tensor& x, const std::vector<float>& w,
                                const std::vector<float>& b, activation act) {
  reference_tensor y(s.output_size());
  for (std::size_t o = 0; o < s.out_channels; ++o)
    for (std::size_t i = 0; i < s.out_height(); ++i)
      for (std::size_t j = 0; j < s.out_width(); ++j) {
        double sum = b[o];
        for (std::size_t c = 0; c < s.channels; ++c)
          for (std::size_t kh = 0; kh < s.kernel_h; ++kh)
            for (std::size_t kw = 0; kw < s.kernel_w; ++kw) {
              const std::size_t r = i * s.stride_h + kh, q = j * s.stride_w + kw;  // padded coordinates
              if (r >= s.pad_top && r - s.pad_top < s.height && q >= s.pad_left && q - s.pad_left < s.width)
                sum += w[((o * s.channels + c) * s.kernel_h + kh) * s.kernel_w + kw] *
                       x[(c * s.height + r - s.pad_top) * s.width + q - s.pad_left];
            }
        y[(o * s.out_height() + i) * s.out_width() + j] = apply(act, sum);
      }
  return y;
}

reference_tensor reference_linear(const reference_tensor& x, std::size_t m, std::size_t n, std::size_t k,
                                  const std::vector<float>& w, const std::vector<float>& b, activation act) {
  reference_tensor y(m * n);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double sum = b[j];
      for (std::size_t l = 0; l < k; ++l) sum += x[i * k + l] * w[j * k + l];
      y[i * n + j] = apply(act, sum);
    }
  return y;
}

// conv 3x3 (relu) -> conv 1x1 -> add (residual) -> max pool -> global avg pool -> linear (gelu)
// -> layer norm -> linear -> softmax.
struct small_net {
  static constexpr std::size_t c = 8, hw = 12, mid = 32, hidden = 48, classes = 40;
  conv2d_shape c1{1, c, hw, hw, mid, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  conv2d_shape c2{1, mid, hw, hw, mid, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
  std::mt19937 rng{7};
  std::vector<float> w1 = test::random_values<float>(c1.weight_size(), rng), b1 = test::random_values<float>(mid, rng);
  std::vector<float> w2 = test::random_values<float>(c2.weight_size(), rng), b2 = test::random_values<float>(mid, rng);
  std::vector<float> w3 = test::random_values<float>(hidden * mid, rng), b3 = test::random_values<float>(hidden, rng);
  std::vector<float> gamma = test::random_values<float>(hidden, rng), beta = test::random_values<float>(hidden, rng);
  std::vector<float> w4 = test::random_values<float>(classes * hidden, rng), b4 = test::random_values<float>(classes, rng);

  void build(pipeline<float>& net, const runtime::context& ctx, cpu::thread_pool& pool, bool shared = true) const {
    conv2d_options conv_options;
    conv_options.shared_memory = shared;
    linear_options dense_options;
    dense_options.shared_memory = shared;
    const auto x = net.input({1, c, hw, hw});
    conv_options.act = activation::relu;
    const auto h1 = net.add("c1", std::make_unique<conv>(ctx, pool, c1, w1, b1, conv_options), x);
    conv_options.act = activation::none;
    const auto h2 = net.add("c2", std::make_unique<conv>(ctx, pool, c2, w2, b2, conv_options), h1);
    const auto sum = net.add("res", pipe::steps::add<float>(), {h1, h2});
    const auto pooled = net.add("pool", pipe::steps::max_pool2d<float>(2, 2), {sum});
    const auto features = net.add("gap", pipe::steps::global_avg_pool<float>(), {pooled});
    dense_options.act = activation::gelu;
    const auto h3 = net.add("fc1", std::make_unique<dense>(ctx, pool, hidden, mid, w3, b3, dense_options), features);
    const auto normed = net.add("ln", pipe::steps::layer_norm<float>(gamma, beta, 1, 1e-5f), {h3});
    dense_options.act = activation::none;
    const auto logits = net.add("fc2", std::make_unique<dense>(ctx, pool, classes, hidden, w4, b4, dense_options), normed);
    net.add("softmax", pipe::steps::softmax<float>(), {logits});
  }

  reference_tensor reference(const std::vector<float>& input) const {
    reference_tensor x(input.begin(), input.end());
    const reference_tensor h1 = reference_conv(c1, x, w1, b1, activation::relu);
    reference_tensor h2 = reference_conv(c2, h1, w2, b2, activation::none);
    for (std::size_t i = 0; i < h2.size(); ++i) h2[i] += h1[i];
    reference_tensor features(mid, 0.0);
    const std::size_t half = hw / 2;
    for (std::size_t ch = 0; ch < mid; ++ch)
      for (std::size_t i = 0; i < half; ++i)
        for (std::size_t j = 0; j < half; ++j) {
          const double* plane = h2.data() + ch * hw * hw;
          features[ch] += std::max({plane[2 * i * hw + 2 * j], plane[2 * i * hw + 2 * j + 1], plane[(2 * i + 1) * hw + 2 * j],
                                    plane[(2 * i + 1) * hw + 2 * j + 1]}) / double(half * half);
        }
    reference_tensor h3 = reference_linear(features, 1, hidden, mid, w3, b3, activation::gelu);
    double mean = 0, variance = 0;
    for (double v : h3) mean += v / hidden;
    for (double v : h3) variance += (v - mean) * (v - mean) / hidden;
    for (std::size_t i = 0; i < hidden; ++i) h3[i] = (h3[i] - mean) / std::sqrt(variance + 1e-5) * gamma[i] + beta[i];
    reference_tensor y = reference_linear(h3, 1, classes, hidden, w4, b4, activation::none);
    const double top = *std::max_element(y.begin(), y.end());
    double total = 0;
    for (double& v : y) total += v = std::exp(v - top);
    for (double& v : y) v /= total;
    return y;
  }
};

void check_output(const pipeline<float>& net, const reference_tensor& want) {
  REQUIRE(net.output().size() == want.size());
  double worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(net.output()[i] - want[i]) / (1e-3 + std::abs(want[i])));
  CHECK(worst < 1e-3);
}

std::vector<float> load_input(pipeline<float>& net, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const auto input = test::random_values<float>(net.input_data().size(), rng);
  std::copy(input.begin(), input.end(), net.input_data().begin());
  return input;
}

}  // namespace

TEST_CASE("every mode of a small net matches the double reference") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  const small_net spec;
  pipeline<float> net(ctx, pool);
  spec.build(net, ctx, pool);
  const reference_tensor want = spec.reference(load_input(net, 1));
  for (const pipe::mode m : {pipe::mode::per_layer, pipe::mode::streamed, pipe::mode::cpu_only, pipe::mode::device_only,
                             pipe::mode::streamed}) {
    CAPTURE(pipe::to_string(m));
    std::fill(net.output().begin(), net.output().end(), -1.0f);
    net(m);
    check_output(net, want);
    CHECK(net.last_run().mode == (m == pipe::mode::streamed && !net.streams() ? pipe::mode::per_layer : m));
    REQUIRE(net.last_run().steps.size() == net.size());
    CHECK(net.last_run().steps[0].split == (m == pipe::mode::cpu_only ? "cpu" : m == pipe::mode::device_only ? "gpu" : "ch 16/32"));
  }
  if (!net.streams()) test::report_skip("streamed gates", "device '" + ctx.caps().name + "' has no SVM atomics: streamed ran per_layer");
}

// plan::predicted, counting the runs a pipeline gives it to anchor its first plan on.
struct counting_planner : plan::predicted<conv2d_shape> {
  int anchor_runs = 0;
  template <class Record>
  void anchor_with(const conv2d_shape& key, const Record& run) {
    ++anchor_runs;
    predicted::anchor_with(key, run);
  }
};
using counted_conv = ops::conv2d<float, cpu::packed_conv, counting_planner>;

TEST_CASE("the first planned run anchors each layer's planner on passes over the network on each side alone") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  const small_net spec;
  for (const int passes : {3, 0}) {
    CAPTURE(passes);
    pipeline<float> net(ctx, pool, {.anchor_passes = passes});
    const auto x = net.input({1, small_net::c, small_net::hw, small_net::hw});
    auto first = std::make_unique<counted_conv>(ctx, pool, spec.c1, spec.w1, spec.b1);
    auto second = std::make_unique<counted_conv>(ctx, pool, spec.c2, spec.w2, spec.b2);
    const counting_planner &p1 = first->planner(), &p2 = second->planner();
    net.add("c2", std::move(second), net.add("c1", std::move(first), x));
    net(pipe::mode::cpu_only);  // plans nothing
    CHECK(p1.anchor_runs == 0);
    net(pipe::mode::streamed);
    CHECK(p1.anchor_runs == 2 * passes);  // each side, `passes` times
    CHECK(p2.anchor_runs == 2 * passes);
    CHECK(p1.planned(spec.c1).has_value());
    net(pipe::mode::per_layer);
    CHECK(p1.anchor_runs == 2 * passes);  // planned: no more passes
  }
}

TEST_CASE("a pipeline's tensors are allocated once and reused across runs") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  const small_net spec;
  pipeline<float> net(ctx, pool);
  spec.build(net, ctx, pool);
  const float* input = net.input_data().data();
  const float* output = net.output().data();
  for (std::uint32_t seed = 1; seed <= 3; ++seed) {
    const reference_tensor want = spec.reference(load_input(net, seed));
    net(seed % 2 == 0 ? pipe::mode::per_layer : pipe::mode::streamed);
    check_output(net, want);
    CHECK(net.input_data().data() == input);
    CHECK(net.output().data() == output);
  }
}

TEST_CASE("streamed falls back to per_layer without SVM flags or shared tensors") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  const small_net spec;
  SUBCASE("event polling forced") {
    pipeline<float> net(ctx, pool, {.completion = sync::completion::mode::event_polling});
    spec.build(net, ctx, pool);
    const reference_tensor want = spec.reference(load_input(net, 4));
    CHECK_FALSE(net.streams());
    net(pipe::mode::streamed);
    CHECK(net.last_run().mode == pipe::mode::per_layer);
    check_output(net, want);
  }
  SUBCASE("layers that stage their tensors") {
    pipeline<float> net(ctx, pool);
    spec.build(net, ctx, pool, false);
    const reference_tensor want = spec.reference(load_input(net, 5));
    CHECK_FALSE(net.streams());
    net(pipe::mode::streamed);
    CHECK(net.last_run().mode == pipe::mode::per_layer);
    check_output(net, want);
  }
}

TEST_CASE("a failing step in a streamed run raises its error and opens the gate enqueued behind it") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  const std::chrono::seconds timeout(5);
  pipeline<float> net(ctx, pool, {.timeout = timeout});
  std::mt19937 rng(3);
  const auto w1 = test::random_values<float>(64 * 32, rng), w2 = test::random_values<float>(64 * 64, rng);
  bool fail = false;
  const pipe::cpu_step<float> fragile{"fragile",
                                      [](const std::vector<pipe::tensor_shape>& in) { return in[0]; },
                                      [&fail](cpu::thread_pool&, const pipe::step_io<float>& io) {
                                        if (fail) throw error(errc::invalid_argument, "fragile step failed on purpose");
                                        std::copy_n(io.inputs[0], pipe::elements(io.output_shape), io.output);
                                      }};
  const auto x = net.input({4, 32});
  const auto h = net.add("up", std::make_unique<dense>(ctx, pool, 64, 32, w1), x);
  const auto g = net.add("fragile", fragile, {h});
  net.add("down", std::make_unique<dense>(ctx, pool, 64, 64, w2), g);
  load_input(net, 6);
  net(pipe::mode::per_layer);  // plans
  const std::vector<float> want(net.output().begin(), net.output().end());

  fail = true;
  const auto start = std::chrono::steady_clock::now();
  test::check_error([&] { net(pipe::mode::streamed); }, errc::invalid_argument);
  // A gate left closed would hold "down"'s kernel until the drain gives up at the timeout.
  CHECK(std::chrono::steady_clock::now() - start < timeout / 2);

  fail = false;
  net(pipe::mode::streamed);
  CHECK(std::equal(want.begin(), want.end(), net.output().begin()));
}

// Enqueues a device part behind a gate on `ready` (`enqueue(gate)`), checks that it writes
// nothing into `y` while the gate stays closed, then opens it (raise, or abort) and waits.
template <class Enqueue, class Wait>
void open_gate_after_a_while(sync::spin_flag& ready, std::span<float> y, bool abort, Enqueue enqueue, Wait wait) {
  constexpr float untouched = -7.0f;
  ready.raise(0);
  std::fill(y.begin(), y.end(), untouched);
  const cl::Event part = enqueue(sync::launch_gate{&ready, 1});
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == untouched; }));
  abort ? ready.abort() : ready.raise(1);
  wait(part);
  CHECK(std::any_of(y.begin(), y.end(), [](float v) { return v != untouched; }));  // an abort runs it through
}

TEST_CASE("a gated device part starts when its flag is raised (or aborted), not when it is dispatched") {
  auto ctx = test::make_context();
  if (!test::has_svm_flags(ctx)) {
    test::report_skip("gated launches", "device '" + ctx.caps().name + "' lacks fine-grained SVM atomics");
    return;
  }
  cpu::thread_pool pool(2);
  const small_net spec;
  memory::svm_vector<std::uint32_t> word(ctx, 1);
  sync::spin_flag ready(word.data());
  std::mt19937 rng(12);
  for (const bool abort : {false, true}) {
    CAPTURE(abort);
    {
      INFO("conv2d");
      conv layer(ctx, pool, spec.c1, spec.w1, spec.b1);
      const auto x = test::random_values<float>(spec.c1.input_size(), rng);
      memory::svm_vector<float> input(ctx, x.size()), y(ctx, spec.c1.output_size()), want(ctx, y.size());
      std::copy(x.begin(), x.end(), input.begin());
      const plan::split_plan on_device{plan::split_dimension::channels, 0};
      layer(input.data(), want.data(), on_device);
      open_gate_after_a_while(
          ready, {y.data(), y.size()}, abort, [&](const sync::launch_gate& gate) { return layer.enqueue_device_part(input.data(), y.data(), on_device, gate); },
          [&](const cl::Event& part) { layer.wait_device_part(part); });
      if (!abort) CHECK(std::equal(y.begin(), y.end(), want.begin()));
    }
    {
      INFO("linear");
      constexpr std::size_t m = 3;
      dense layer(ctx, pool, small_net::hidden, small_net::mid, spec.w3, spec.b3);
      const auto x = test::random_values<float>(m * small_net::mid, rng);
      memory::svm_vector<float> input(ctx, x.size()), y(ctx, m * small_net::hidden), want(ctx, y.size());
      std::copy(x.begin(), x.end(), input.begin());
      layer(input.data(), m, want.data(), 0);
      open_gate_after_a_while(
          ready, {y.data(), y.size()}, abort, [&](const sync::launch_gate& gate) { return layer.enqueue_device_part(input.data(), m, y.data(), 0, gate); },
          [&](const cl::Event& part) { layer.wait_device_part(part); });
      if (!abort) CHECK(std::equal(y.begin(), y.end(), want.begin()));
    }
  }
  {
    INFO("a closed gate needs tensors shared with the device");
    linear_options staged;
    staged.shared_memory = false;
    dense layer(ctx, pool, small_net::hidden, small_net::mid, spec.w3, spec.b3, staged);
    std::vector<float> x(small_net::mid), y(small_net::hidden);
    test::check_error([&] { layer.enqueue_device_part(x.data(), 1, y.data(), 0, {&ready, 1}); }, errc::invalid_argument,
                      "gated device part needs tensors shared");
  }
}

TEST_CASE("bad composition is a coexec::error when the step is added") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(1);
  std::mt19937 rng(9);
  const auto w = test::random_values<float>(16 * 8, rng);
  const conv2d_shape s{1, 4, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const auto cw = test::random_values<float>(s.weight_size(), rng);
  pipeline<float> net(ctx, pool);
  test::check_error([&] { net.add("early", pipe::steps::softmax<float>(), {pipe::tensor{0}}); }, errc::invalid_argument);
  const auto x = net.input({1, 4, 6, 6});
  test::check_error([&] { net.input({2, 2}); }, errc::invalid_argument);
  test::check_error([&] { net.add("fc", std::make_unique<dense>(ctx, pool, 16, 8, w), x); }, errc::invalid_argument);  // K 8 vs 6
  const auto y = net.add("conv", std::make_unique<conv>(ctx, pool, s, cw), x);
  test::check_error([&] { net.add("conv again", std::make_unique<conv>(ctx, pool, s, cw), y); }, errc::invalid_argument);
  test::check_error([&] { net.add("res", pipe::steps::add<float>(), {x, y}); }, errc::invalid_argument);
  test::check_error([&] { net.add("gap", pipe::steps::global_avg_pool<float>(), {pipe::tensor{7}}); }, errc::invalid_argument);
  CHECK(net.size() == 1);
}

TEST_CASE("attention matches the double reference, with chunks that cut across heads") {
  constexpr std::size_t tokens = 7, heads = 3, head_features = 5, d = heads * head_features;
  auto ctx = test::make_context();
  cpu::thread_pool pool(4);  // 21 (head, row) tasks in chunks of 6, 5, 5, 5: each chunk meets two heads
  pipeline<float> net(ctx, pool);
  net.add("attention", pipe::steps::attention<float>(heads), {net.input({tokens, 3 * d})});
  const std::vector<float> qkv = load_input(net, 5);
  net(pipe::mode::per_layer);

  const reference_tensor want = test::attention_reference(qkv.data(), tokens, heads, head_features);
  check_output(net, want);
  test::check_error([&] { pipe::steps::attention<float>(4).output_shape({{tokens, 3 * d}}); }, errc::invalid_argument);
}
