#!/usr/bin/env bash
# Configures and builds one flavour of speedmon.
#   scripts/build.sh release   -> build/release (RelWithDebInfo, -O2)
#   scripts/build.sh asan      -> build/asan    (ASan + UBSan, tests only)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
jobs=${JOBS:-$(nproc)}
case "$flavour" in
  release) args=(-DCMAKE_BUILD_TYPE=Release -DSPEEDMON_SANITIZE=OFF) ;;
  asan)    args=(-DCMAKE_BUILD_TYPE=Debug -DSPEEDMON_SANITIZE=ON -DSPEEDMON_BENCH=OFF) ;;
  *) echo "usage: $0 release|asan" >&2; exit 2 ;;
esac
dir=build/$flavour
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" -G "Unix Makefiles" "${args[@]}" >/dev/null
fi
cmake --build "$dir" -j "$jobs"
