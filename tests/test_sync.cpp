#include <atomic>
#include <thread>

#include "coexec/sync/probe.hpp"
#include "support.hpp"

using namespace coexec;
using namespace std::chrono_literals;

namespace {

const std::string& probe_source() { return sync::probe::source(); }

// Enqueues coexec_probe_wait_fill: waits for `flag` to reach `expected`, then fills `out` with `value`.
cl::Event enqueue_wait_fill(const runtime::context& ctx, sync::completion& done, std::uint32_t* flag,
                            std::uint32_t expected, std::uint32_t* out, std::size_t n, std::uint32_t value) {
  auto kernel = ctx.kernel(probe_source(), "coexec_probe_wait_fill");
  detail::check(clSetKernelArgSVMPointer(kernel(), 0, flag), "arg");
  detail::check(kernel.setArg(1, expected), "arg");
  detail::check(clSetKernelArgSVMPointer(kernel(), 2, out), "arg");
  detail::check(kernel.setArg(3, value), "arg");
  done.bind(kernel, 4);
  cl::Event event;
  detail::check(ctx.queue().enqueueNDRangeKernel(kernel, cl::NullRange, cl::NDRange(n), cl::NDRange(std::min<std::size_t>(n, 16)),
                                                 nullptr, &event),
                "enqueue");
  detail::check(ctx.queue().flush(), "flush");
  return event;
}

}  // namespace

TEST_CASE("spin_flag between host threads") {
  std::uint32_t word = 0;
  sync::spin_flag flag(&word);
  std::atomic<int> seen{0};
  std::thread waiter([&] {
    flag.wait(3);
    seen = 1;
  });
  flag.raise(1);
  flag.raise(2);
  std::this_thread::sleep_for(5ms);
  CHECK(seen.load() == 0);
  flag.raise(3);
  waiter.join();
  CHECK(seen.load() == 1);
  CHECK(sync::reached(0x00000001u, 0xFFFFFFF0u));  // wrap-around order
  CHECK_FALSE(sync::reached(0xFFFFFFF0u, 0x00000001u));
}

TEST_CASE("spin_flag times out and aborts instead of hanging") {
  std::uint32_t word = 0;
  sync::spin_flag flag(&word);
  test::check_error([&] { flag.wait(1, 20ms); }, errc::timeout);
  std::thread aborter([&] {
    std::this_thread::sleep_for(5ms);
    flag.abort();
  });
  test::check_error([&] { flag.wait(1, 10s); }, errc::aborted);
  aborter.join();
}

TEST_CASE("completion: device -> host through the SVM counter and through event polling") {
  auto ctx = test::make_context();
  if (!test::has_coarse_svm(ctx)) {
    test::report_skip("completion", "device has no SVM");
    return;
  }
  for (auto wanted : {sync::completion::mode::svm_counter, sync::completion::mode::event_polling}) {
    sync::completion done(ctx, wanted);
    if (wanted == sync::completion::mode::svm_counter && done.kind() != wanted)
      test::report_skip("SVM counter completion", "device '" + ctx.caps().name + "' lacks fine-grained SVM atomics");
    memory::svm_vector<std::uint32_t> out(ctx, 256);
    memory::svm_vector<std::uint32_t> flag(ctx, 1);
    for (std::uint32_t round = 1; round <= 3; ++round) {  // the sync block is reused without reset
      {
        auto host = flag.map();
        flag[0] = round;  // already raised: the kernel does not wait
      }
      auto event = enqueue_wait_fill(ctx, done, flag.data(), round, out.data(), out.size(), 100 + round);
      done.wait(event);
      auto host = out.map(CL_MAP_READ);
      for (auto v : out) REQUIRE(v == 100 + round);
    }
  }
}

TEST_CASE("a kernel enqueued early waits on a host flag, then signals back") {
  auto ctx = test::make_context();
  if (!test::has_svm_flags(ctx)) {
    test::report_skip("host -> device flag", "device '" + ctx.caps().name + "' lacks fine-grained SVM atomics");
    return;
  }
  sync::completion done(ctx);
  memory::svm_vector<std::uint32_t> out(ctx, 64);
  memory::svm_vector<std::uint32_t> word(ctx, 1);
  sync::spin_flag ready(word.data());
  auto event = enqueue_wait_fill(ctx, done, word.data(), 5, out.data(), out.size(), 77);
  std::this_thread::sleep_for(20ms);
  CHECK(out[0] == 0);  // still waiting: the flag is below 5
  CHECK_FALSE(sync::completion::event_complete(event));
  ready.raise(5);
  done.wait(event, 10s);
  for (auto v : out) REQUIRE(v == 77);
}

TEST_CASE("an aborted device wait writes nothing and ends the kernel") {
  auto ctx = test::make_context();
  if (!test::has_svm_flags(ctx)) {
    test::report_skip("device-side abort", "device '" + ctx.caps().name + "' lacks fine-grained SVM atomics");
    return;
  }
  sync::completion done(ctx);
  memory::svm_vector<std::uint32_t> out(ctx, 64);
  memory::svm_vector<std::uint32_t> word(ctx, 1);
  sync::spin_flag ready(word.data());
  auto event = enqueue_wait_fill(ctx, done, word.data(), 1, out.data(), out.size(), 9);
  test::check_error([&] { done.wait(event, 50ms); }, errc::timeout);  // host wait has a deadline
  ready.abort();
  sync::spin_until([&] { return sync::completion::event_complete(event); }, 10s, "aborted kernel");
  for (auto v : out) REQUIRE(v == 0);
}

TEST_CASE("probe measures every sync path and the flag round trip") {
  auto ctx = test::make_context();
  if (!test::has_coarse_svm(ctx)) {
    test::report_skip("probe", "device has no SVM");
    return;
  }
  sync::probe probe(ctx);
  probe.launch_finish();
  probe.launch_poll();
  probe.launch_spin();
  if (!test::has_svm_flags(ctx)) {
    test::report_skip("pingpong", "no SVM atomics");
    test::check_error([&] { probe.pingpong(10); }, errc::unsupported);
    return;
  }
  const auto round_trip = probe.pingpong(100);
  // No speed bound: under TSan on a loaded 2-core machine a round trip took 34 ms (bench_sync
  // measures it).
  CHECK(round_trip.count() > 0);
  MESSAGE("pingpong round trip: " << round_trip.count() << " ns");
}
