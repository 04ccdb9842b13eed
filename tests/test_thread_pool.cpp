#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include "coexec/cpu/thread_pool.hpp"
#include "coexec/error.hpp"
#include "support.hpp"

using coexec::cpu::index_range;
using coexec::cpu::split_evenly;
using coexec::cpu::thread_pool;

TEST_CASE("split_evenly tiles the range with chunks differing by at most one") {
  for (std::size_t count : {0u, 1u, 5u, 7u, 64u})
    for (std::size_t parts : {1u, 2u, 3u, 8u}) {
      std::size_t next = 0;
      for (std::size_t part = 0; part < parts; ++part) {
        const index_range r = split_evenly(count, part, parts);
        CHECK(r.begin == next);
        CHECK(r.size() >= count / parts);
        CHECK(r.size() <= count / parts + 1);
        next = r.end;
      }
      CHECK(next == count);
    }
}

TEST_CASE("run calls every worker exactly once per call") {
  for (std::size_t threads : {1u, 2u, 3u, 5u}) {
    CAPTURE(threads);
    thread_pool pool(threads);
    REQUIRE(pool.size() == threads);
    std::vector<std::atomic<int>> calls(threads);
    std::atomic<bool> wrong_count{false};
    constexpr int rounds = 2000;
    for (int i = 0; i < rounds; ++i)
      pool.run([&](std::size_t worker, std::size_t workers) {
        calls[worker].fetch_add(1, std::memory_order_relaxed);
        if (workers != threads) wrong_count = true;
      });
    CHECK_FALSE(wrong_count);
    for (auto& c : calls) CHECK(c.load() == rounds);
  }
}

TEST_CASE("zero threads means one: the caller alone") {
  thread_pool pool(0);
  CHECK(pool.size() == 1);
  int calls = 0;
  pool.run([&](std::size_t worker, std::size_t workers) { calls += worker == 0 && workers == 1; });
  CHECK(calls == 1);
}

TEST_CASE("the caller is worker 0") {
  thread_pool pool(3);
  const auto caller = std::this_thread::get_id();
  std::vector<std::thread::id> ids(pool.size());
  pool.run([&](std::size_t worker, std::size_t) { ids[worker] = std::this_thread::get_id(); });
  CHECK(ids[0] == caller);
  CHECK(ids[1] != caller);
  CHECK(ids[2] != ids[1]);
}

TEST_CASE("workers that went to sleep wake up again") {
  thread_pool pool(3);
  std::atomic<int> calls{0};
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(thread_pool::spin_time * 20);  // well past the spin phase
    pool.run([&](std::size_t, std::size_t) { ++calls; });
  }
  CHECK(calls == 15);
}

TEST_CASE("keep_awake wakes the sleeping workers and keeps them spinning until released") {
  thread_pool pool(3);
  std::atomic<int> calls{0};
  pool.run([&](std::size_t, std::size_t) { ++calls; });
  REQUIRE(coexec::test::eventually([&] { return pool.sleeping() == 2; }));
  {
    const auto awake = pool.keep_awake();
    CHECK(coexec::test::eventually([&] { return pool.sleeping() == 0; }));
    {
      const auto nested = pool.keep_awake();
    }
    std::this_thread::sleep_for(thread_pool::spin_time * 20);  // well past the spin phase
    CHECK(pool.sleeping() == 0);
    pool.run([&](std::size_t, std::size_t) { ++calls; });
    std::this_thread::sleep_for(thread_pool::spin_time * 20);
    CHECK(pool.sleeping() == 0);
  }
  CHECK(coexec::test::eventually([&] { return pool.sleeping() == 2; }));
  pool.run([&](std::size_t, std::size_t) { ++calls; });
  CHECK(calls == 9);
}

TEST_CASE("an exception from any worker reaches the caller and the pool stays usable") {
  thread_pool pool(3);
  SUBCASE("from a spawned worker") {
    CHECK_THROWS_WITH_AS(pool.run([](std::size_t worker, std::size_t) {
      if (worker == 2) throw std::runtime_error("worker 2 failed");
    }),
                         "worker 2 failed", std::runtime_error);
  }
  SUBCASE("from the caller") {
    CHECK_THROWS_AS(pool.run([](std::size_t worker, std::size_t) {
      if (worker == 0) throw coexec::error(coexec::errc::aborted, "caller failed");
    }),
                    coexec::error);
  }
  SUBCASE("from all of them at once: one is rethrown") {
    CHECK_THROWS_AS(
        pool.run([](std::size_t, std::size_t) { throw std::logic_error("everyone failed"); }),
        std::logic_error);
  }
  std::atomic<int> calls{0};
  for (int i = 0; i < 100; ++i) pool.run([&](std::size_t, std::size_t) { ++calls; });
  CHECK(calls == 300);
}

TEST_CASE("parallel_for covers the range exactly once with contiguous chunks") {
  thread_pool pool(3);
  for (std::size_t count : {0u, 1u, 2u, 3u, 7u, 1000u}) {
    CAPTURE(count);
    std::vector<std::atomic<int>> hits(count);
    std::atomic<bool> bad_chunk{false};
    pool.parallel_for(count, [&](std::size_t begin, std::size_t end) {
      if (begin >= end || end > count) bad_chunk = true;
      for (std::size_t i = begin; i < end; ++i) ++hits[i];
    });
    CHECK_FALSE(bad_chunk);
    for (auto& h : hits) CHECK(h.load() == 1);
  }
}

TEST_CASE("run from two threads at once is serialized") {
  thread_pool pool(2);
  std::atomic<int> inside{0}, overlaps{0}, calls{0};
  auto task = [&](std::size_t, std::size_t) {
    ++calls;
    if (inside.fetch_add(1) >= 2) ++overlaps;  // more than one run's workers at once
    inside.fetch_sub(1);
  };
  auto hammer = [&] {
    for (int i = 0; i < 500; ++i) pool.run(task);
  };
  std::thread other(hammer);
  hammer();
  other.join();
  CHECK(overlaps == 0);
  CHECK(calls == 2000);
}

#if defined(__linux__)
TEST_CASE("workers can be pinned to cores") {
  const std::vector<int> cores = coexec::test::allowed_cores();
  REQUIRE_FALSE(cores.empty());

  thread_pool pool(3, cores);
  std::vector<int> ran_on(pool.size(), -1);
  pool.run([&](std::size_t worker, std::size_t) { ran_on[worker] = sched_getcpu(); });
  for (std::size_t i = 1; i < pool.size(); ++i) CHECK(ran_on[i] == cores[i % cores.size()]);
}

TEST_CASE("pinning to a core that does not exist is an invalid argument") {
  for (int core : {-1, CPU_SETSIZE}) {
    CAPTURE(core);
    try {
      thread_pool pool(2, {core});
      FAIL("no exception");
    } catch (const coexec::error& e) {
      CHECK(e.code() == coexec::errc::invalid_argument);
    }
  }
}
#endif
