#!/usr/bin/env bash
# coexec quick start: installs what is missing, builds, then runs the demo or the test suite.
#   bash scripts/quickstart.sh demo   # README command 1
#   bash scripts/quickstart.sh test   # README command 2 (what CI runs)
# Packages come from apt (Debian 12 / Ubuntu 24.04); only those `dpkg -s` reports missing are
# installed. Extra arguments after `demo` go to the demo.
set -euo pipefail
mode=${1:-demo}
shift || true
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${COEXEC_BUILD_DIR:-$root/build/quickstart}

packages=(g++ cmake ninja-build pkg-config ocl-icd-opencl-dev opencl-clhpp-headers pocl-opencl-icd clinfo
          doctest-dev libbenchmark-dev libopenblas-dev libclblast-dev doxygen
          python3 python3-venv python3-numpy python3-sklearn python3-matplotlib)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "coexec needs these packages (no apt-get here, install them yourself): ${missing[*]}" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
case "$mode" in
  demo)
    cmake --build "$build" --target demo
    "$build/examples/demo" "$@"
    ;;
  test)
    # Conan is only on PyPI; it lives in a private venv so the system Python stays untouched.
    if [ ! -x "$build/venv/bin/conan" ]; then
      python3 -m venv "$build/venv"
      "$build/venv/bin/pip" install -q conan
    fi
    export PATH="$PATH:$build/venv/bin"  # appended: the venv's python3 must not shadow the system's
    cmake --build "$build"
    # The soak test (100,000 calls, minutes) is CI's own step: scripts/ci_reliability.sh soak.
    ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 900 -LE soak
    ;;
  *)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac
