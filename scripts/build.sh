#!/usr/bin/env bash
# Configures and builds one flavour of speedmon.
#   scripts/build.sh release   -> build/release (RelWithDebInfo, -O2)
#   scripts/build.sh asan      -> build/asan    (ASan + UBSan, tests only)
#   scripts/build.sh fuzz      -> build/fuzz    (clang, ASan + UBSan + libFuzzer; fuzz/ only)
# Arguments after the flavour go to cmake's configure step, e.g. the daemon alone, which
# needs only `scripts/install-deps.sh build` (monitoring/Dockerfile):
#   scripts/build.sh release -DSPEEDMON_TESTS=OFF -DSPEEDMON_BENCH=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
shift || true
jobs=${JOBS:-$(nproc)}
case "$flavour" in
  release) args=(-DCMAKE_BUILD_TYPE=Release -DSPEEDMON_SANITIZE=OFF) ;;
  asan)    args=(-DCMAKE_BUILD_TYPE=Debug -DSPEEDMON_SANITIZE=ON -DSPEEDMON_BENCH=OFF) ;;
  fuzz)    args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPEEDMON_FUZZ=ON -DSPEEDMON_TESTS=OFF
                 -DSPEEDMON_BENCH=OFF -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14) ;;
  *) echo "usage: $0 release|asan|fuzz" >&2; exit 2 ;;
esac
dir=build/$flavour
if [ ! -f "$dir/CMakeCache.txt" ] || [ $# -gt 0 ]; then
  cmake -S . -B "$dir" -G "Unix Makefiles" "${args[@]}" "$@" >/dev/null
fi
cmake --build "$dir" -j "$jobs"
