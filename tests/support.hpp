#pragma once
// Shared helpers for coexec's tests: one context per test (no static OpenCL objects that would
// outlive the runtime), device quirk predicates, and explicit skip reports.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#include <sys/types.h>
#endif

#include "coexec/runtime/context.hpp"
#include "coexec/sync/completion.hpp"

namespace coexec::test {

/// The device under test (COEXEC_PLATFORM / COEXEC_DEVICE), with a per-process binary cache dir.
inline runtime::context make_context(runtime::context_options options = {}) {
  options.binary_cache_dir = std::filesystem::temp_directory_path() / "coexec-test-cache";
  return runtime::context(std::move(options));
}

inline bool has_svm_flags(const runtime::context& ctx) { return ctx.caps().svm_flags(); }
inline bool has_coarse_svm(const runtime::context& ctx) { return ctx.caps().svm_coarse; }
inline bool is_pocl(const runtime::context& ctx) { return ctx.caps().is_pocl(); }

/// The data paths an operator can take: SVM shared with either completion mode, or staged buffers.
struct data_path {
  const char* name;
  sync::completion::mode completion;
  bool shared;
};
inline constexpr data_path data_paths[] = {{"shared, SVM counter", sync::completion::mode::svm_counter, true},
                                           {"shared, event polling", sync::completion::mode::event_polling, true},
                                           {"staged", sync::completion::mode::event_polling, false}};

/// Polls `holds` for up to two seconds (threads may be descheduled on a loaded CI machine).
template <class Holds>
bool eventually(Holds holds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!holds()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

#if defined(__linux__)
/// The cores `thread` may run on (0: the calling thread), ascending.
inline std::vector<int> allowed_cores(pid_t thread = 0) {
  cpu_set_t set;
  REQUIRE(sched_getaffinity(thread, sizeof set, &set) == 0);
  std::vector<int> cores;
  for (int core = 0; core < CPU_SETSIZE; ++core)
    if (CPU_ISSET(core, &set)) cores.push_back(core);
  return cores;
}
#endif

/// Reports a skipped check loudly (stdout and the doctest log) instead of passing silently.
inline void report_skip(const std::string& what, const std::string& why) {
  std::cout << "[coexec test] SKIPPED " << what << ": " << why << std::endl;
  MESSAGE("SKIPPED " << what << ": " << why);
}

/// Runs `f` and checks it throws coexec::error with `code` and, when given, a message that
/// contains `mentions` (e.g. the name of the argument at fault).
template <class F>
void check_error(F&& f, errc code, const std::string& mentions = {}) {
  try {
    f();
    FAIL("expected coexec::error with code " << to_string(code));
  } catch (const coexec::error& e) {
    INFO("message: " << e.what());
    CHECK_EQ(std::string(to_string(e.code())), std::string(to_string(code)));
    CHECK_MESSAGE(std::string(e.what()).find(mentions) != std::string::npos, "the message should mention '" << mentions << "'");
  }
}

}  // namespace coexec::test
