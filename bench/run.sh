#!/usr/bin/env bash
# The side-by-side benchmark, in one command (see docs/BENCHMARKS.md):
#   bench/run.sh                 ~6-8 minutes: 3 rounds, 5 s (1 KiB) and 3 s runs
#   BENCH_LONG=1 bench/run.sh    5 rounds, 15 s and 10 s runs, 30 s slow reader
#   BENCH_SKIP_BUILD=1 ...       use the binaries already in build/release
# Builds Release, then runs bench/harness.py, which starts nginx (upstream and proxy),
# HAProxy, speedmon and node_exporter on loopback ports, stops each by pid on any exit,
# and prints the tables. Exit status 1 when speedmon crashed or answered errors, 2 when
# a stage of the harness failed (the other stages still print).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in nginx haproxy wrk /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 2; }
done

# What the binaries are built from, read before the build (others may commit meanwhile).
BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
BENCH_DIRTY=$(git status --porcelain --untracked-files=no 2>/dev/null | cut -c4- | paste -sd, - || true)
export BENCH_COMMIT BENCH_DIRTY

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  if ! scripts/build.sh release; then
    # The bench needs two targets; a broken test elsewhere must not stop the measurement,
    # but it must not go unnoticed either.
    echo "run.sh: WARNING: the full release build failed; building only speedmon and" \
         "speedmon_microbench" >&2
    cmake --build build/release --target speedmon speedmon_microbench -j "$(nproc)"
  fi
fi

# wrk -c1000 and the proxies in front of it need a few thousand descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
  echo "run.sh: open-files limit $(ulimit -n) < 4096; the 1000-connection runs will fail" >&2
fi

harness_pid=
cleanup() {
  # harness.py stops what it started (and its children die with it: PR_SET_PDEATHSIG);
  # this covers a signal that reaches run.sh first.
  if [ -n "$harness_pid" ] && kill -0 "$harness_pid" 2>/dev/null; then
    kill -TERM "$harness_pid" 2>/dev/null || true
    wait "$harness_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

/usr/bin/python3 bench/harness.py &
harness_pid=$!
status=0
wait "$harness_pid" || status=$?
harness_pid=
exit "$status"
