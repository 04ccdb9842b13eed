#!/usr/bin/env bash
# Builds coexec on the accelerator machine and runs the benchmark suites on its platforms
# (pocl-16: emulated SoC on 16 cores; nvidia: the NVIDIA GPU), writing JSON + logs to $OUT.
#   bash scripts/device_bench.sh <suite-regex> [benchmark filter]
# e.g. bash scripts/device_bench.sh 'sync|linear' 'bert'
set -euo pipefail
suites=${1:-sync|pool|cpu_gemm|gpu_gemm|linear|conv|plan}
filter=${2:-.}
out=${OUT:-/tmp/out}
mkdir -p "$out"
build=${BUILD:-/tmp/coexec-build}
cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release > "$out/configure.log" 2>&1 || { cat "$out/configure.log"; exit 1; }
targets=$(cd bench && ls bench_*.cpp | sed 's/\.cpp$//' | grep -E "bench_($suites)$" | tr '\n' ' ')
ninja -C $build $targets ${TESTS:-} > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
# Correctness first, on each device: TESTS="test_sync test_linear" runs those test binaries.
for t in ${TESTS:-}; do
  for device in Portable NVIDIA; do
    echo "== $t on $device"
    COEXEC_PLATFORM=$device timeout ${TEST_TIMEOUT:-120} $build/tests/$t 2>&1 | tail -4 || echo "(exit $?)"
  done
done
for bench in $targets; do
  platforms=${PLATFORMS:-pocl-16 nvidia}
  grep -q run_main bench/$bench.cpp || platforms=host  # suites without the --platform switch
  for platform in $platforms; do
    echo "== $bench --platform=$platform"
    platform_flag=--platform=$platform
    [ "$platform" = host ] && platform_flag=
    timeout ${BENCH_TIMEOUT:-400} $build/bench/$bench $platform_flag --benchmark_filter="$filter" \
      --benchmark_min_time=${MIN_TIME:-0.2} --benchmark_out="$out/${bench}_${platform}.json" --benchmark_out_format=json \
      2>&1 | grep -v -e '^\*\*\*WARNING' -e 'LOG(0)' | tee -a "$out/${bench}_${platform}.txt" || echo "(exit $?)"
  done
done
