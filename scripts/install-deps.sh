#!/usr/bin/env bash
# Installs, idempotently, the Debian packages speedmon's build, tests and benchmarks use.
#
#   scripts/install-deps.sh [build|test|bench|all]     (default: all)
#
#   build  compiler, cmake, the -dev libraries and clang-format: enough for the daemon
#          alone (scripts/build.sh release -DSPEEDMON_TESTS=OFF -DSPEEDMON_BENCH=OFF, as
#          monitoring/Dockerfile does)
#   test   build + GoogleTest, Prometheus, Alertmanager, Chromium, the Python modules of
#          the integration and e2e tests, pip, setuptools, venv and mypy (the tests
#          install and type-check clients/python), and clang-14 with libFuzzer (scripts/build.sh fuzz)
#   bench  build + Google Benchmark, wrk, nginx, HAProxy, node-exporter, strace, valgrind
#          and perf (bench/)
#   all    all of them: what scripts/test.sh, scripts/run.sh and CI use
#
# Runs `apt-get update` only when something is missing, and keeps packaged daemons
# (nginx, prometheus, alertmanager, ...) from starting on install: the tests and
# benchmarks start their own copies on loopback ports. DRY_RUN=1 prints the group's
# packages, one a line, and exits without looking at what is installed.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake pkg-config clang-format
  libuv1-dev node-llhttp prometheus-cpp-dev libtomlplusplus-dev libsqlite3-dev
  nlohmann-json3-dev zlib1g-dev libcurl4-openssl-dev
)
TEST_PACKAGES=(
  googletest libgtest-dev libgmock-dev
  prometheus prometheus-alertmanager   # promtool, amtool; the e2e stack
  chromium                             # the status page e2e test
  python3 python3-yaml python3-requests curl
  python3-pip python3-setuptools python3-wheel python3-venv   # pip install ./clients/python
  mypy                                 # the client's types (tests/client)
  clang-14 libfuzzer-14-dev libclang-rt-14-dev   # scripts/build.sh fuzz
)
BENCH_PACKAGES=(
  libbenchmark-dev                     # speedmon_microbench
  wrk nginx-light haproxy prometheus-node-exporter python3
  strace valgrind linux-perf           # bench/profile.py
)

group=${1:-all}
case "$group" in
  build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
  test)  PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  bench) PACKAGES=("${BUILD_PACKAGES[@]}" "${BENCH_PACKAGES[@]}") ;;
  all)   PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${BENCH_PACKAGES[@]}") ;;
  -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac
# Each package once, in order (python3 is in two groups).
mapfile -t PACKAGES < <(printf '%s\n' "${PACKAGES[@]}" | awk '!seen[$0]++')

if [ "${DRY_RUN:-0}" = 1 ]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

echo "install-deps ($group): installing ${missing[*]}" >&2
# Keep postinst scripts from starting services (exit 101 = action forbidden).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Packaged daemons may still have been started by a postinst; stop any that run now.
for svc in nginx haproxy prometheus prometheus-alertmanager prometheus-node-exporter; do
  pkill -x "$svc" 2>/dev/null || true
done
