#pragma once
// coexec::cpu::thread_pool — persistent workers that run one task on every thread at once.
//
// run(f) publishes f by bumping an epoch. Idle workers spin on the epoch for `spin_time` (so the
// back-to-back calls of consecutive layers wake them within a microsecond) and then sleep on it
// with std::atomic::wait (so an idle pool costs no CPU). A wake from sleep costs far more: 12-20 µs
// until the last of 8-15 workers starts, on the 16-core VM of DESIGN.md. So a caller about to wait
// for something the next run() follows (a layer's device part) holds keep_awake(): it wakes the
// sleepers and keeps every idle worker spinning until released. Each worker reports completion on
// its own cache line, which the caller polls. A task is passed as a pointer plus a trampoline, so
// run() never allocates.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#include "coexec/detail/cpu_relax.hpp"
#include "coexec/error.hpp"

namespace coexec::cpu {

/// Half-open index range [begin, end).
struct index_range {
  /// @{
  std::size_t begin = 0, end = 0;  ///< first index, one past the last
  /// @}
  constexpr std::size_t size() const noexcept { return end - begin; }  ///< number of indices
  friend constexpr bool operator==(const index_range&, const index_range&) = default;
};

/// Part `part` of [0, count) cut into `parts` contiguous chunks whose sizes differ by at most one.
constexpr index_range split_evenly(std::size_t count, std::size_t part,
                                   std::size_t parts) noexcept {
  const std::size_t base = count / parts, extra = count % parts;
  const std::size_t begin = part * base + std::min(part, extra);
  return {begin, begin + base + (part < extra ? 1 : 0)};
}

namespace detail {
#if defined(__linux__)
inline void pin(pthread_t thread, int core) {
  require(core >= 0 && core < CPU_SETSIZE,
          "thread_pool: core " + std::to_string(core) + " is out of range");
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  require(pthread_setaffinity_np(thread, sizeof set, &set) == 0,
          "thread_pool: cannot pin a thread to core " + std::to_string(core));
}
#endif
}  // namespace detail

/// Pins the calling thread to logical CPU `core` (Linux; elsewhere a no-op).
/// Throws errc::invalid_argument when the core does not exist or is outside this process's CPU set.
inline void pin_current_thread([[maybe_unused]] int core) {
#if defined(__linux__)
  detail::pin(pthread_self(), core);
#endif
}

/// A fixed set of threads that run a task together: run(f) calls f(worker, workers) once on each.
///
/// Worker 0 is the thread calling run(); the pool spawns the other size() - 1. When `cores` is
/// non-empty, spawned worker i is pinned to cores[i % cores.size()] (Linux only; ignored
/// elsewhere). The caller is deliberately not pinned: it is the application's thread, not the
/// pool's, and constructing a pool should not change where it may run. Pin it yourself with
/// pin_current_thread(cores[0]) if it should join the same core set.
///
/// Thread safety: run() and parallel_for() may be called from any thread; concurrent calls are
/// serialized by a mutex. A task must not call run() on its own pool (it would deadlock).
class thread_pool {
 public:
  /// How long an idle worker (and a caller waiting for the workers) polls before sleeping.
  static constexpr std::chrono::microseconds spin_time{50};

  /// A pool of `threads` workers (at least 1, the caller included), spawning threads - 1;
  /// spawned worker i is pinned to cores[i % cores.size()] when `cores` is non-empty (Linux).
  explicit thread_pool(std::size_t threads = std::thread::hardware_concurrency(),
                       std::vector<int> cores = {}) {
    threads = std::max<std::size_t>(threads, 1);
    finished_ = std::make_unique<finish_flag[]>(threads - 1);
    workers_.reserve(threads - 1);
    try {
      for (std::size_t i = 1; i < threads; ++i) {
        workers_.emplace_back([this, i] { work(i); });
#if defined(__linux__)
        if (!cores.empty()) detail::pin(workers_.back().native_handle(), cores[i % cores.size()]);
#endif
      }
    } catch (...) {
      stop();
      throw;
    }
  }

  ~thread_pool() { stop(); }

  /// While it lives, the pool's idle workers spin instead of sleeping (see keep_awake()).
  class awake {
   public:
    awake() noexcept = default;  ///< holds nothing
    /// Keeps `pool`'s workers awake, waking those asleep.
    explicit awake(thread_pool& pool) noexcept : pool_(&pool) {
      if (pool_->awake_holders_.fetch_add(1) == 0) pool_->nudge();
    }
    /// Takes over `other`'s hold.
    awake(awake&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
    awake& operator=(awake&&) = delete;
    ~awake() {
      if (pool_ != nullptr) pool_->awake_holders_.fetch_sub(1);
    }

   private:
    thread_pool* pool_ = nullptr;
  };

  /// Wakes the sleeping workers and keeps every idle worker spinning until the returned guard
  /// ends, so the run() after a wait (a device part) starts them within a microsecond. Costs a
  /// busy core per worker while held; guards nest.
  [[nodiscard]] awake keep_awake() noexcept { return awake(*this); }

  /// Workers asleep right now (0 while a keep_awake() guard lives, once they saw it).
  std::size_t sleeping() const noexcept { return epoch_sleepers_.load(); }

  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  /// Number of workers, the calling thread included.
  std::size_t size() const noexcept { return workers_.size() + 1; }

  /// Calls f(worker, size()) on every worker, the caller being worker 0, and returns when all are
  /// done. If f throws on any worker, the first exception is rethrown here once all are done.
  template <class F>
  void run(F&& f) {
    using task_type = std::remove_reference_t<F>;
    const std::lock_guard<std::mutex> lock(run_mutex_);
    task_ = const_cast<void*>(static_cast<const void*>(std::addressof(f)));
    invoke_ = [](void* task, std::size_t worker, std::size_t workers) {
      (*static_cast<task_type*>(task))(worker, workers);
    };
    dispatch();
  }

  /// Cuts [0, count) into size() contiguous chunks; calls f(begin, end) for each non-empty one.
  template <class F>
  void parallel_for(std::size_t count, F&& f) {
    if (count == 0) return;
    run([&](std::size_t worker, std::size_t workers) {
      const index_range chunk = split_evenly(count, worker, workers);
      if (chunk.size() != 0) f(chunk.begin, chunk.end);
    });
  }

 private:
  using counter = std::atomic<std::uint32_t>;

  // Polls `ready` for spin_time; false if it never held.
  template <class Ready>
  static bool spin_until(Ready ready) {
    const auto deadline = std::chrono::steady_clock::now() + spin_time;
    do {
      for (int i = 0; i < 64; ++i) {
        if (ready()) return true;
        coexec::detail::cpu_relax();
      }
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
  }

  // Sleeps until done(value) holds, counted in `sleepers` so that wake() can skip the notify
  // syscall while nobody sleeps. The seq_cst increment of `sleepers` before re-reading `value`
  // pairs with wake()'s seq_cst update-then-read: either the sleeper sees the new value or the
  // waker sees the sleeper.
  template <class Done>
  static void sleep_until(counter& value, Done done, counter& sleepers) {
    sleepers.fetch_add(1);
    for (std::uint32_t v = value.load(); !done(v); v = value.load()) value.wait(v);
    sleepers.fetch_sub(1);
  }

  static void wake(counter& value, counter& sleepers) {
    if (sleepers.load() != 0) value.notify_all();
  }

  // epoch_ counts runs in steps of 2; its low bit flips to wake the sleepers without a run.
  static constexpr std::uint32_t run_of(std::uint32_t epoch) noexcept { return epoch >> 1; }

  void nudge() noexcept {
    epoch_.fetch_xor(1);
    wake(epoch_, epoch_sleepers_);
  }

  void work(std::size_t worker) {
    counter& finished = finished_[worker - 1].epoch;
    for (std::uint32_t seen = 0;;) {
      const auto moved = [seen](std::uint32_t e) { return run_of(e) != seen; };
      while (!spin_until([&] { return moved(epoch_.load(std::memory_order_acquire)); }))
        if (awake_holders_.load() == 0)
          sleep_until(epoch_, [&](std::uint32_t e) { return moved(e) || awake_holders_.load() != 0; }, epoch_sleepers_);
      seen = run_of(epoch_.load(std::memory_order_acquire));
      if (stopping_) return;
      execute(worker);
      finished.store(seen);
      wake(finished, caller_sleeping_);
    }
  }

  // One pass reads every worker's flag with independent loads, so their cache misses overlap.
  bool all_finished(std::uint32_t epoch) const noexcept {
    std::size_t count = 0;
    for (std::size_t i = 0; i < workers_.size(); ++i)
      count += finished_[i].epoch.load(std::memory_order_acquire) == epoch;
    return count == workers_.size();
  }

  void execute(std::size_t worker) noexcept {
    try {
      invoke_(task_, worker, size());
    } catch (...) {
      if (!failed_.exchange(true)) error_ = std::current_exception();
    }
  }

  void dispatch() {
    // The seq_cst increment publishes task_ and invoke_ to the workers.
    const std::uint32_t epoch = run_of(epoch_.fetch_add(2) + 2);
    wake(epoch_, epoch_sleepers_);
    execute(0);
    const auto reached = [epoch](std::uint32_t e) { return e == epoch; };
    if (!spin_until([&] { return all_finished(epoch); }))
      for (std::size_t i = 0; i < workers_.size(); ++i)
        sleep_until(finished_[i].epoch, reached, caller_sleeping_);
    if (failed_.load(std::memory_order_relaxed)) {
      failed_.store(false, std::memory_order_relaxed);
      std::rethrow_exception(std::exchange(error_, nullptr));
    }
  }

  void stop() noexcept {
    stopping_ = true;
    epoch_.fetch_add(2);
    epoch_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  // The caller writes this line once per run(); the workers read it after seeing the epoch move.
  alignas(64) counter epoch_{0};
  counter epoch_sleepers_{0};
  std::atomic<std::uint32_t> awake_holders_{0};  // keep_awake() guards alive
  void* task_ = nullptr;
  void (*invoke_)(void*, std::size_t, std::size_t) = nullptr;
  bool stopping_ = false;

  // Each worker reports the epoch it finished on a line of its own, so finishing costs no
  // contended read-modify-write; the caller polls them all.
  struct alignas(64) finish_flag {
    counter epoch{0};
  };
  std::unique_ptr<finish_flag[]> finished_;
  alignas(64) counter caller_sleeping_{0};

  alignas(64) std::atomic<bool> failed_{false};
  std::exception_ptr error_;
  std::mutex run_mutex_;
  std::vector<std::thread> workers_;
};

}  // namespace coexec::cpu
