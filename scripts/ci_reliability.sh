#!/usr/bin/env bash
# The reliability steps of CI (.ci/run runs them after the quick-start test command):
#   bash scripts/ci_reliability.sh asan      # whole suite under ASan + UBSan (Debug, -O1)
#   bash scripts/ci_reliability.sh tsan      # ctest label `tsan` under TSan
#   bash scripts/ci_reliability.sh oclgrind  # the small-kernel test under oclgrind's checkers
#   bash scripts/ci_reliability.sh soak      # ctest label `soak` (100,000 co-executed calls)
#   bash scripts/ci_reliability.sh fuzz      # both libFuzzer targets, FUZZ_SECONDS each (60)
# oclgrind and soak use the quick-start build (build/quickstart), so they run after
# `scripts/quickstart.sh test`. Like quickstart.sh, each step apt-installs only the packages
# `dpkg -s` reports missing.
set -euo pipefail
step=${1:?usage: $0 asan|tsan|oclgrind|soak|fuzz}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
quickstart_build=${COEXEC_BUILD_DIR:-$root/build/quickstart}
suppressions=$root/scripts/sanitizers
jobs=$(nproc)
# LeakSanitizer, for the asan and fuzz steps. intercept_tls_get_addr=0: up to GCC 13 and LLVM 16
# the runtime's __tls_get_addr interceptor takes a dynamic TLS block whose address happens to sit
# 16 bytes into a page for a pre-2.25 glibc's block and reads a bogus range from the words before
# it; the exit-time leak check then crashes scanning it ("Tracer caught signal 11", after a clean
# run). PoCL loads a module per kernel program, so such blocks come and go at random.
lsan_options="suppressions=$suppressions/lsan.supp:print_suppressions=0:intercept_tls_get_addr=0"

install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if ! command -v apt-get >/dev/null; then
    echo "this step needs these packages (no apt-get here, install them yourself): ${missing[*]}" >&2
    exit 1
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# A Debug build at -O1 with `flags`, without the benchmarks (no test needs them); of `target`
# only, when given.
sanitizer_build() {
  local dir=$1 flags=$2 target=${3:-all}
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCOEXEC_BUILD_BENCH=OFF \
    "-DCMAKE_CXX_FLAGS=-O1 -g -fno-omit-frame-pointer $flags" \
    "-DCMAKE_EXE_LINKER_FLAGS=$flags" "-DCMAKE_SHARED_LINKER_FLAGS=$flags"
  cmake --build "$dir" --target "$target"
}

case "$step" in
  asan)
    sanitizer_build "$root/build/ci-asan" "-fsanitize=address,undefined -fno-sanitize-recover=all"
    export ASAN_OPTIONS="abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export LSAN_OPTIONS=$lsan_options
    # Left out: packaging (rebuilds consumers, no coexec code runs sanitized), soak (its own
    # step), docs and the two script checks below (no C++ of ours runs in them).
    ctest --test-dir "$root/build/ci-asan" --no-tests=error --output-on-failure -j "$jobs" --timeout 900 \
      -LE 'packaging|soak|docs' -E '^(kernel_headers_fresh|train_predictor)$'
    ;;
  tsan)
    sanitizer_build "$root/build/ci-tsan" "-fsanitize=thread" coexec_tsan_tests
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$suppressions/tsan.supp"
    ctest --test-dir "$root/build/ci-tsan" --no-tests=error --output-on-failure -j "$jobs" --timeout 900 -L tsan
    ;;
  oclgrind)
    install_missing oclgrind
    log=$quickstart_build/oclgrind.log
    rm -f "$log"
    # oclgrind is the only platform the program sees; out-of-bounds accesses are always
    # checked. It writes its findings (and its own fatal errors, such as an instruction a checker
    # cannot run) to the log and leaves the exit status alone, so any line there fails the step.
    oclgrind --log "$log" --check-api --data-races --uninitialized "$quickstart_build/tests/test_kernels_small"
    if [ -s "$log" ]; then
      cat "$log"
      echo "oclgrind reported errors (above)" >&2
      exit 1
    fi
    echo "oclgrind: no error"
    ;;
  soak)
    ctest --test-dir "$quickstart_build" --no-tests=error --output-on-failure -L soak --timeout 900
    ;;
  fuzz)
    install_missing clang-14 libclang-rt-14-dev
    dir=$root/build/ci-fuzz
    cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
      -DCMAKE_CXX_FLAGS=-O1 -DCOEXEC_BUILD_FUZZ=ON -DCOEXEC_BUILD_TESTS=OFF -DCOEXEC_BUILD_BENCH=OFF \
      -DCOEXEC_BUILD_EXAMPLES=OFF
    cmake --build "$dir" --target fuzz_model_file fuzz_shapes
    export LSAN_OPTIONS=$lsan_options
    for target in fuzz_model_file fuzz_shapes; do
      mkdir -p "$dir/corpus/$target"
      # New inputs go to the first corpus; fuzz/seeds/<target> (committed) starts it off.
      seeds=$root/fuzz/seeds/$target
      "$dir/$target" -max_total_time="${FUZZ_SECONDS:-60}" -print_final_stats=1 "$dir/corpus/$target" \
        $([ -d "$seeds" ] && echo "$seeds")
    done
    ;;
  *)
    echo "usage: $0 asan|tsan|oclgrind|soak|fuzz" >&2
    exit 2
    ;;
esac
