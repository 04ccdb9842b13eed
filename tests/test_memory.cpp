#include <algorithm>
#include <numeric>
#include <vector>

#include "coexec/memory/io_buffer.hpp"
#include "coexec/memory/svm_vector.hpp"
#include "support.hpp"

using namespace coexec;

namespace {

// Doubles every element on the device; used to prove host writes reach kernels and back.
void double_on_device(const runtime::context& ctx, void* data, std::size_t n) {
  auto kernel = ctx.kernel("__kernel void twice(__global float* x) { x[get_global_id(0)] *= 2.0f; }", "twice");
  detail::check(clSetKernelArgSVMPointer(kernel(), 0, data), "set arg");
  detail::check(ctx.queue().enqueueNDRangeKernel(kernel, cl::NullRange, cl::NDRange(n)), "enqueue");
  ctx.finish();
}

}  // namespace

TEST_CASE("svm_allocator meets the allocator requirements") {
  auto ctx = test::make_context();
  if (!test::has_coarse_svm(ctx)) {
    test::report_skip("svm_allocator", "device has no SVM");
    test::check_error([&] { memory::svm_allocator<float> a(ctx); }, errc::unsupported);
    return;
  }
  memory::svm_allocator<float> a(ctx);
  memory::svm_allocator<double> rebound(a);
  CHECK(a == rebound);
  CHECK(memory::svm_allocator<float>(rebound) == a);
  auto other = test::make_context();
  CHECK_FALSE(a == memory::svm_allocator<float>(other));
  using traits = std::allocator_traits<memory::svm_allocator<float>>;
  static_assert(std::is_same_v<traits::rebind_alloc<int>, memory::svm_allocator<int>>);

  float* p = a.allocate(100);
  CHECK(reinterpret_cast<std::uintptr_t>(p) % 128 == 0);
  CHECK(ctx.owns_svm(p, 100 * sizeof(float)));
  CHECK_FALSE(ctx.owns_svm(p, 101 * sizeof(float)));
  CHECK_FALSE(other.owns_svm(p, 4));
  a.deallocate(p, 100);
  CHECK_FALSE(ctx.owns_svm(p, 4));
}

TEST_CASE("std::vector over fine-grained SVM is shared with kernels") {
  auto ctx = test::make_context();
  if (ctx.caps().svm() != memory::svm_granularity::fine) {
    test::report_skip("std::vector over SVM", "device '" + ctx.caps().name + "' has no fine-grained SVM");
    return;
  }
  std::vector<float, memory::svm_allocator<float>> v(1000, 1.5f, memory::svm_allocator<float>(ctx));
  double_on_device(ctx, v.data(), v.size());
  for (float x : v) REQUIRE(x == 3.0f);
}

TEST_CASE("svm_vector on the fine and coarse paths") {
  auto ctx = test::make_context();
  if (!test::has_coarse_svm(ctx)) {
    test::report_skip("svm_vector", "device has no SVM");
    return;
  }
  for (auto granularity : {memory::svm_granularity::fine, memory::svm_granularity::coarse}) {
    CAPTURE(static_cast<int>(granularity));
    memory::svm_vector<float> v(ctx, 4096, granularity);
    CHECK(v.size() == 4096);
    if (granularity == memory::svm_granularity::coarse) CHECK_FALSE(v.fine_grained());
    {
      auto host = v.map(CL_MAP_WRITE);
      for (float x : v) REQUIRE(x == 0.0f);  // value-initialised
      std::iota(v.begin(), v.end(), 0.0f);
    }
    double_on_device(ctx, v.data(), v.size());
    auto host = v.map(CL_MAP_READ);
    for (std::size_t i = 0; i < v.size(); ++i) REQUIRE(v[i] == 2.0f * static_cast<float>(i));
  }
}

TEST_CASE("svm_vector moves and frees only after the queue drained") {
  auto ctx = test::make_context();
  if (!test::has_coarse_svm(ctx)) {
    test::report_skip("svm_vector lifetime", "device has no SVM");
    return;
  }
  memory::svm_vector<float> a(ctx, 64);
  const float* p = a.data();
  memory::svm_vector<float> b(std::move(a));
  CHECK(b.data() == p);
  CHECK(a.data() == nullptr);
  {
    memory::svm_vector<float> c(ctx, 1 << 20);
    auto kernel = ctx.kernel("__kernel void fill(__global float* x) { x[get_global_id(0)] = 1.0f; }", "fill");
    detail::check(clSetKernelArgSVMPointer(kernel(), 0, c.data()), "set arg");
    detail::check(ctx.queue().enqueueNDRangeKernel(kernel, cl::NullRange, cl::NDRange(c.size())), "enqueue");
  }  // destroyed while the kernel may still run: deallocate drains the queue first
  CHECK(ctx.owns_svm(b.data(), b.bytes()));
}

TEST_CASE("io_buffer: SVM when shared, else zeroed host memory the driver pins, which device copies read and write") {
  auto ctx = test::make_context();
  memory::io_buffer<float> host(ctx, 3000, false);
  CHECK_FALSE(host.shared());
  CHECK(host.pinned());  // every driver we run on pins CL_MEM_ALLOC_HOST_PTR buffers
  REQUIRE(host.size() == 3000);
  CHECK(std::all_of(host.data(), host.data() + host.size(), [](float v) { return v == 0.0f; }));
  std::iota(host.data(), host.data() + host.size(), 1.0f);
  cl::Buffer device(ctx.cl_context(), CL_MEM_READ_WRITE, host.size() * sizeof(float));
  detail::check(ctx.queue().enqueueWriteBuffer(device, CL_TRUE, 0, host.size() * sizeof(float), host.data()), "write");
  memory::io_buffer<float> back(std::move(host));  // moving keeps the memory
  std::fill(back.data(), back.data() + back.size(), 0.0f);
  detail::check(ctx.queue().enqueueReadBuffer(device, CL_TRUE, 0, back.size() * sizeof(float), back.data()), "read");
  for (std::size_t i = 0; i < back.size(); ++i) REQUIRE(back.data()[i] == static_cast<float>(i + 1));

  if (!test::has_coarse_svm(ctx)) return test::report_skip("io_buffer over SVM", "device '" + ctx.caps().name + "' has no SVM");
  const memory::io_buffer<float> shared(ctx, 16, true);
  CHECK(shared.shared());
  CHECK(ctx.owns_svm(shared.data(), 16 * sizeof(float)));
}
