#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#include <unistd.h>
#endif

#include "coexec/kernels/sync.hpp"
#include "coexec/runtime/platform.hpp"
#include "support.hpp"

using namespace coexec;

TEST_CASE("capabilities describe the device under test") {
  auto ctx = test::make_context();
  const auto& caps = ctx.caps();
  CHECK_FALSE(caps.name.empty());
  CHECK(caps.compute_units > 0);
  CHECK(caps.max_work_group_size > 0);
  CHECK(caps.opencl_c_major >= 1);
  CHECK(caps.build_options().find("-cl-std=CL") == 0);
  if (caps.svm_flags()) CHECK(caps.build_options().find("COEXEC_ATOMIC_SCOPE") != std::string::npos);
  MESSAGE("device: " << caps.name << " | " << caps.build_options());
}

TEST_CASE("device filters select by substring and index, and fail clearly") {
  const auto all = runtime::devices(runtime::device_filter{});
  REQUIRE_FALSE(all.empty());
  const auto name = all.front().getInfo<CL_DEVICE_NAME>();
  CHECK_EQ(runtime::devices({"", name.substr(0, 4)}).size() >= 1, true);
  CHECK_EQ(runtime::devices({"0", "0"}).size(), 1u);
  test::check_error([] { runtime::select_device({"", "no-such-device-xyz"}); }, errc::no_device);
  test::check_error([] { runtime::select_device({"no-such-platform-xyz", ""}); }, errc::no_device);
  test::check_error([] { runtime::select_device({"", "999"}); }, errc::no_device);
}

TEST_CASE("programs are cached per source and options, builds fail with the log") {
  auto ctx = test::make_context();
  const std::string source = "__kernel void k(__global int* x) { x[get_global_id(0)] = 7; }";
  auto a = ctx.program(source);
  auto b = ctx.program(source);
  CHECK(a() == b());
  auto c = ctx.program(source, "-DVARIANT=1");
  CHECK(a() != c());
  ctx.purge_caches();
  CHECK(ctx.program(source)() != a());

  try {
    ctx.program("__kernel void broken(__global int* x) { x[0] = undeclared_symbol; }");
    FAIL("build should fail");
  } catch (const coexec::error& e) {
    CHECK(e.code() == errc::build_failure);
    CHECK(std::string(e.what()).find("undeclared_symbol") != std::string::npos);  // the build log
  }
  test::check_error([&] { ctx.kernel(source, "no_such_kernel"); }, errc::opencl);
}

TEST_CASE("program cache is safe from several threads") {
  auto ctx = test::make_context();
  const std::string source = "__kernel void k(__global int* x) { x[0] = 1; }";
  std::vector<std::thread> threads;
  std::vector<cl_program> handles(4);
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { handles[t] = ctx.program(source)(); });
  for (auto& t : threads) t.join();
  for (auto h : handles) CHECK(h == handles.front());
}

TEST_CASE("binary cache stores a program and a new context loads it") {
  const auto dir = std::filesystem::temp_directory_path() / "coexec-binary-cache-test";
  std::filesystem::remove_all(dir);
  const std::string source = "__kernel void cached(__global int* x) { x[0] = 42; }";
  runtime::context_options options;
  options.binary_cache_dir = dir;
  {
    runtime::context ctx(options);
    ctx.program(source);
    runtime::binary_cache cache(dir);
    CHECK(cache.load(ctx.caps(), source, ctx.caps().build_options()).has_value());
  }
  runtime::context again(options);
  auto kernel = again.kernel(source, "cached");  // built from the cached binary
  CHECK(kernel() != nullptr);
  std::filesystem::remove_all(dir);
}

TEST_CASE("emulated SoC: a sub-device of k compute units") {
  runtime::context whole = test::make_context();
  if (whole.caps().max_sub_devices < 2) {
    test::report_skip("emulated SoC", "device '" + whole.caps().name + "' cannot be partitioned by counts");
    test::check_error([] { test::make_context({.sub_device_units = 1}); }, errc::unsupported);
    return;
  }
  auto soc = test::make_context({.sub_device_units = 1});
  CHECK_EQ(soc.caps().compute_units, 1u);
  CHECK(soc.kernel(kernels::sync() + "__kernel void k(__global int* x) { x[0] = 1; }", "k")() != nullptr);
  CHECK(test::make_context({.sub_device_units = whole.caps().compute_units}).caps().compute_units == whole.caps().compute_units);
  test::check_error([&] { test::make_context({.sub_device_units = whole.caps().compute_units + 1}); }, errc::invalid_argument);
}

#if defined(__linux__)
namespace {

void restrict_to(pid_t thread, const std::vector<int>& cores) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const int core : cores) CPU_SET(core, &set);
  REQUIRE(sched_setaffinity(thread, sizeof set, &set) == 0);
}

// A thread that runs until destroyed, and its kernel thread id.
struct idle_thread {
  std::atomic<bool> stop{false};
  std::atomic<pid_t> id{0};
  std::thread thread{[this] {
    id = gettid();
    while (!stop) std::this_thread::yield();
  }};
  idle_thread() { CHECK(test::eventually([&] { return id != 0; })); }
  ~idle_thread() { stop = true, thread.join(); }
};

// Puts an environment variable back as it was when the guard was made.
struct environment_guard {
  explicit environment_guard(std::string variable) : name(std::move(variable)) {
    if (const char* set = std::getenv(name.c_str())) value = set;
  }
  ~environment_guard() { value ? ::setenv(name.c_str(), value->c_str(), 1) : ::unsetenv(name.c_str()); }
  std::string name;
  std::optional<std::string> value;
};

}  // namespace

// What platform::make_context does to the OpenCL runtime's threads on the emulated SoC: PoCL
// pins a surplus worker to the CPU side's first core (see runtime/platform.hpp).
TEST_CASE("threads started since a snapshot are confined to the device's cores, others are left alone") {
  const std::vector<int> cores = test::allowed_cores();
  if (cores.size() < 2) {
    test::report_skip("thread confinement", "this process may run on " + std::to_string(cores.size()) + " core(s), the test needs 2");
    return;
  }
  const std::vector<int> device{cores[0]}, cpu_side{cores[1]};
  idle_thread earlier;
  restrict_to(earlier.id, cpu_side);
  const std::vector<long> before = runtime::detail::thread_ids();
  CHECK(std::find(before.begin(), before.end(), long{earlier.id}) != before.end());
  idle_thread helper, pinned;
  restrict_to(helper.id, cpu_side);  // like PoCL's surplus worker
  restrict_to(pinned.id, device);    // like a worker its runtime pinned to a device core

  runtime::detail::confine_threads_started_since(before, device);
  CHECK(test::allowed_cores(helper.id) == device);
  CHECK(test::allowed_cores(pinned.id) == device);
  CHECK(test::allowed_cores(earlier.id) == cpu_side);  // started before the snapshot
  CHECK(test::allowed_cores() == cores);               // this thread too

  idle_thread unpinned;  // may run anywhere: confined to the device's cores as well
  runtime::detail::confine_threads_started_since(before, device);
  CHECK(test::allowed_cores(unpinned.id) == device);
  runtime::detail::confine_threads_started_since(before, {});  // no cores: nothing moves
  CHECK(test::allowed_cores(earlier.id) == cpu_side);
}

TEST_CASE("the emulated SoC's platform limits PoCL and names the device's and the CPU side's cores") {
  // named() sets PoCL's variables where they are unset: the guards put them back.
  const environment_guard units("POCL_CPU_MAX_CU_COUNT"), threads("POCL_MAX_PTHREAD_COUNT"), affinity("POCL_AFFINITY");
  const auto soc = runtime::platform::named("pocl-4");
  for (const environment_guard* limit : {&units, &threads})  // PoCL's limits, under both names
    if (!limit->value) CHECK(std::string(std::getenv(limit->name.c_str())) == "2");
  CHECK(soc.device_cores == std::vector<int>{0, 1});
  CHECK(soc.cpu_cores == std::vector<int>{2, 3});
  CHECK(runtime::platform::named("default").device_cores.empty());
}
#endif
