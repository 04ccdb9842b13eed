#!/usr/bin/env bash
# A/B on one machine: builds the working tree ("new") and a copy of it with the files under
# <overlay> laid over it ("old"), side by side, then runs each command for old and new in turn,
# <rounds> times. The lent machine differs from call to call (a fresh VM nearly every call, CPU
# speed 2x apart), so only runs interleaved in one call compare two builds fairly.
#   bash scripts/device_ab.sh <overlay> <rounds> '<command>' ['<command>' ...]
# {build} in a command is the build directory of the side that runs it; TARGETS names what to
# build (default: bench_conv bench_linear demo). Output lines start with "old <round>" or "new <round>".
# e.g. (previous models in old/include/coexec/predict/models/):
#   bash scripts/device_ab.sh old 3 "{build}/bench/bench_conv --platform=nvidia --benchmark_filter=BM_ConvNet/mbv2"
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
overlay=$(cd "$1" && pwd) rounds=$2
shift 2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${AB_DIR:-/tmp/coexec-ab}
rm -rf "$work/src-old" && mkdir -p "$work/src-old"
tar -C "$root" --exclude=./.git --exclude=./.device --exclude='./build*' -cf - . | tar -C "$work/src-old" -xf -
cp -r "$overlay/." "$work/src-old/"
# shellcheck disable=SC2086  # TARGETS: one target per word
build() {
  cmake -S "$1" -B "$work/build-$2" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$work/configure-$2.log" 2>&1 &&
    ninja -C "$work/build-$2" ${TARGETS:-bench_conv bench_linear demo} > "$work/build-$2.log" 2>&1
}
build "$root" new & new=$!
build "$work/src-old" old & old=$!
wait $new || { tail -20 "$work/build-new.log"; exit 1; }
wait $old || { tail -20 "$work/build-old.log"; exit 1; }
for round in $(seq "$rounds"); do
  for command in "$@"; do
    for side in old new; do
      eval "${command//\{build\}/$work/build-$side}" 2>&1 | sed "s/^/$side $round /" || true
    done
  done
done
