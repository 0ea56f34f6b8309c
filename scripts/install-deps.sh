#!/usr/bin/env bash
# Installs, idempotently, every Debian package that speedmon's build, tests and
# benchmarks use. Runs `apt-get update` only when something is missing, and keeps
# packaged daemons (nginx, prometheus, alertmanager, ...) from starting on install:
# the tests and benchmarks start their own copies on loopback ports.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang-format
  libuv1-dev node-llhttp prometheus-cpp-dev libtomlplusplus-dev libsqlite3-dev
  nlohmann-json3-dev zlib1g-dev libcurl4-openssl-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  prometheus prometheus-alertmanager prometheus-node-exporter
  wrk nginx-light haproxy curl python3 python3-requests
  chromium python3-yaml
  clang-14 libfuzzer-14-dev libclang-rt-14-dev   # scripts/build.sh fuzz
  strace valgrind          # bench/profile.py only
)

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

echo "install-deps: installing ${missing[*]}" >&2
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
