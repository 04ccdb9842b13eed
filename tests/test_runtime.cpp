#include <filesystem>
#include <thread>

#include "coexec/kernels/sync.hpp"
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
