// ops::attention: every split of the heads on every data path against the double reference,
// the grid-search plan, a pipeline step in each mode, and the errors for bad input.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <utility>
#include <random>
#include <vector>

#include "attention_reference.hpp"
#include "coexec/memory/io_buffer.hpp"
#include "coexec/ops/attention.hpp"
#include "coexec/pipe/pipeline.hpp"
#include "linear_reference.hpp"
#include "support.hpp"

using namespace coexec;

namespace {

using test::data_path;
using test::data_paths;

template <class T>
void check_attention(const T* y, const std::vector<double>& want) {
  const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;  // outputs are averages of values in [-1, 1]
  double worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(double(y[i]) - want[i]));
  CHECK(worst <= tolerance);
}

}  // namespace

TEST_CASE_TEMPLATE("attention matches the double reference at every split, on every data path, with both kernels", T, float, double) {
  auto ctx = test::make_context();
  if (std::is_same_v<T, double> && !ctx.caps().fp64) {
    test::report_skip("attention<double>", "device '" + ctx.caps().name + "' has no fp64");
    return;
  }
  cpu::thread_pool pool(2);
  std::mt19937 rng(23);
  // (tokens, heads, head_dim): one of everything; odd sizes (scalar features); a sequence shorter
  // than a key tile; several key tiles and work-groups with a part tile and a part group.
  struct shape {
    std::size_t tokens, heads, head_dim;
  };
  for (const shape s : {shape{1, 1, 1}, shape{7, 3, 5}, shape{17, 2, 16}, shape{45, 4, 64}}) {
    CAPTURE(s.tokens);
    CAPTURE(s.heads);
    CAPTURE(s.head_dim);
    const std::size_t d = s.heads * s.head_dim;
    const auto qkv_values = test::random_values<T>(s.tokens * 3 * d, rng);
    const auto want = test::attention_reference(qkv_values.data(), s.tokens, s.heads, s.head_dim);
    // Every data path with the device's own kernel, then (float) both kernels on the first path.
    std::vector<std::pair<data_path, std::optional<gpu::attention_config>>> runs;
    for (const data_path& path : data_paths) runs.push_back({path, std::nullopt});
    if (std::is_same_v<T, float>) {
      runs.push_back({data_paths[0], gpu::attention_config{.tiled = true, .rows = 16, .keys = 32, .threads = 128, .vector_width = 1}});
      gpu::attention_config rows_kernel{.tiled = false, .rows = 8, .keys = 4, .threads = 8, .vector_width = 16};
      while (s.head_dim % rows_kernel.vector_width != 0) rows_kernel.vector_width /= 2;
      runs.push_back({data_paths[0], rows_kernel});
    }
    for (const auto& [path, kernel] : runs) {
      INFO(path.name << (kernel ? kernel->tiled ? ", tiled kernel" : ", rows kernel" : ", the device's kernel"));
      ops::attention<T> op(ctx, pool, s.heads, s.head_dim, {.completion = path.completion, .shared_memory = path.shared, .kernel = kernel});
      memory::io_buffer<T> qkv(ctx, qkv_values.size(), op.shared_memory()), y(ctx, s.tokens * d, op.shared_memory());
      std::copy(qkv_values.begin(), qkv_values.end(), qkv.data());
      for (std::size_t split = 0; split <= s.heads; ++split) {
        CAPTURE(split);
        std::fill(y.data(), y.data() + y.size(), T(-777));
        op(qkv.data(), s.tokens, y.data(), split);
        check_attention(y.data(), want);
        CHECK(op.last_run().split == split);
      }
    }
  }
}

TEST_CASE("attention plans its split by grid search, timing every head count once per shape") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  constexpr std::size_t tokens = 20, heads = 4, head_dim = 8, d = heads * head_dim;
  std::mt19937 rng(29);
  const auto values = test::random_values<float>(tokens * 3 * d, rng);
  ops::attention<float> op(ctx, pool, heads, head_dim);
  memory::io_buffer<float> qkv(ctx, values.size(), op.shared_memory()), y(ctx, tokens * d, op.shared_memory());
  std::copy(values.begin(), values.end(), qkv.data());
  op(qkv.data(), tokens, y.data());
  check_attention(y.data(), test::attention_reference(values.data(), tokens, heads, head_dim));
  const auto curve = op.planner().curve(op.shape(tokens));
  REQUIRE(curve.size() == heads + 1);  // 0, 1, ..., H: fewer than grid_search's coarse points
  for (std::size_t split = 0; split <= heads; ++split) CHECK(curve[split].split == split);
  const std::size_t planned = op.last_run().split;
  op(qkv.data(), tokens, y.data());  // the cached plan
  CHECK(op.last_run().split == planned);
}

TEST_CASE("attention as a pipeline step matches the reference in every mode") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  constexpr std::size_t tokens = 33, heads = 3, head_dim = 16, d = heads * head_dim;
  pipeline<float> net(ctx, pool);
  const auto qkv = net.input({tokens, 3 * d});
  net.add("attention", std::make_unique<ops::attention<float>>(ctx, pool, heads, head_dim), qkv);
  CHECK(net.output_shape() == pipe::tensor_shape{tokens, d});
  std::mt19937 rng(31);
  const auto values = test::random_values<float>(tokens * 3 * d, rng);
  std::copy(values.begin(), values.end(), net.input_data().begin());
  const auto want = test::attention_reference(values.data(), tokens, heads, head_dim);
  for (const pipe::mode m : {pipe::mode::cpu_only, pipe::mode::device_only, pipe::mode::per_layer, pipe::mode::streamed}) {
    INFO(pipe::to_string(m));
    std::fill(net.output().begin(), net.output().end(), -777.0f);
    net(m);
    check_attention(net.output().data(), want);
    CHECK(net.last_run().steps[0].co_executed);
  }
  CHECK(net.last_run().steps[0].kind == "attention 3x16");
}

TEST_CASE("attention rejects bad shapes, buffers and splits with errors that name them") {
  auto ctx = test::make_context();
  cpu::thread_pool pool(2);
  using test::check_error;
  const errc invalid = errc::invalid_argument;
  check_error([&] { ops::attention<float>(ctx, pool, 0, 8); }, invalid, "heads and head_dim must be positive");
  check_error([&] { ops::attention<float>(ctx, pool, 2, 0); }, invalid, "heads and head_dim must be positive");
  check_error([&] { ops::attention<float>(ctx, pool, 2, 8, {.timeout = std::chrono::nanoseconds(0)}); }, invalid, "timeout");
  const gpu::attention_config odd_vectors{.tiled = false, .rows = 8, .keys = 4, .threads = 8, .vector_width = 16};
  check_error([&] { gpu::attention_launcher<float>(ctx, {4, 2, 12}, odd_vectors); }, invalid, "divides head_dim 12");

  constexpr std::size_t tokens = 4, heads = 2, head_dim = 8, d = heads * head_dim;
  ops::attention<float> op(ctx, pool, heads, head_dim);
  memory::io_buffer<float> qkv(ctx, tokens * 3 * d, op.shared_memory()), y(ctx, tokens * d, op.shared_memory());
  check_error([&] { op(nullptr, tokens, y.data(), 1); }, invalid, "qkv is null");
  check_error([&] { op(qkv.data(), tokens, nullptr, 1); }, invalid, "y is null");
  check_error([&] { op(qkv.data(), 0, y.data(), 1); }, invalid, "token count");
  check_error([&] { op(qkv.data(), tokens, y.data(), heads + 1); }, invalid, "split 3 exceeds the 2 heads");
  check_error([&] { op(qkv.data() + 1, tokens, reinterpret_cast<float*>(reinterpret_cast<char*>(y.data()) + 1), 1); }, invalid,
              "not aligned");
  if (op.shared_memory()) {
    std::vector<float> host(tokens * 3 * d);
    check_error([&] { op(host.data(), tokens, y.data(), 1); }, invalid, "qkv must be an SVM allocation");
    check_error([&] { op(qkv.data(), tokens + 1, y.data(), 1); }, invalid, "S*3D = 240");  // more tokens than qkv holds
  } else {
    test::report_skip("attention's SVM ownership checks", "device '" + ctx.caps().name + "' has no fine-grained SVM");
  }

  pipeline<float> net(ctx, pool);
  const auto x = net.input({tokens, 2 * d});
  check_error([&] { net.add("attention", std::make_unique<ops::attention<float>>(ctx, pool, heads, head_dim), x); }, invalid,
              "takes a tensor of shape {S, 48}");
}
