#!/usr/bin/env bash
# Sets up, builds (Release) and runs speedmon with the given arguments.
#   scripts/run.sh                       the embedded default config
#   scripts/run.sh --config my.toml
#   scripts/run.sh --demo                four fake emulators on 8081-8084 behind speedmon
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release >&2
if [ "${1:-}" = "--demo" ]; then
  shift
  pids=()
  for port in 8081 8082 8083 8084; do
    /usr/bin/python3 tools/fake_emulator.py --port "$port" --quiet &
    pids+=($!)
  done
  trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
  build/release/app/speedmon "$@"
  exit $?
fi
exec build/release/app/speedmon "$@"
