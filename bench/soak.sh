#!/usr/bin/env bash
# The soak test: SECONDS (default 600) of mixed load against one speedmon, then exact
# checks (counts, store, reloads, errors) and the RSS / open-fd curves.
#   bench/soak.sh                 600 s against build/release/app/speedmon
#   bench/soak.sh 90              a short run
#   bench/soak.sh 600 asan        against build/asan/app/speedmon (built with
#                                 JOBS=${JOBS:-1} scripts/build.sh asan when missing)
# Environment: SPEEDMON_BIN (overrides the flavour's binary), SOAK_AGENT_RPS (40,
# requests/s per agent thread), SOAK_KEEP_TMP=1 (keep the temp dir: config, logs, store),
# ASAN_OPTIONS (asan default: detect_leaks=1:abort_on_error=1:quarantine_size_mb=16, a
# quarantine small enough to fill during the warm-up, so the RSS curve is speedmon's).
# Exit status: 0 every check held, 1 a check failed, 2 the soak itself could not run.
# Installs nothing; builds nothing except the asan flavour when it is asked and missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
flavour=${2:-release}
case "$seconds" in ''|*[!0-9]*) echo "usage: $0 [SECONDS] [release|asan]" >&2; exit 2 ;; esac
case "$flavour" in release|asan) ;; *) echo "usage: $0 [SECONDS] [release|asan]" >&2; exit 2 ;; esac

command -v python3 >/dev/null || { echo "soak.sh: python3 is missing" >&2; exit 2; }
python3 -c 'import requests' 2>/dev/null || { echo "soak.sh: python3 'requests' is missing" >&2; exit 2; }

bin=${SPEEDMON_BIN:-build/$flavour/app/speedmon}
if [ ! -x "$bin" ]; then
  if [ "$flavour" = asan ] && [ -z "${SPEEDMON_BIN:-}" ]; then
    echo "soak.sh: $bin missing; building it (JOBS=${JOBS:-1} scripts/build.sh asan)" >&2
    JOBS=${JOBS:-1} scripts/build.sh asan
  fi
  [ -x "$bin" ] || { echo "soak.sh: $bin is missing (scripts/build.sh $flavour)" >&2; exit 2; }
fi

# Four agents, four fakes, a few admin clients and speedmon's own descriptors: far below
# any usual limit, but a low soft limit would show up as fd errors, not as a soak result.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SOAK_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
export SOAK_COMMIT
SPEEDMON_BIN=$(realpath "$bin")
export SPEEDMON_BIN

# soak.py stops everything it started on any exit (and its children die with it:
# PR_SET_PDEATHSIG); exec keeps a signal to this script going to it directly.
exec python3 bench/soak.py "$seconds" "$flavour"
