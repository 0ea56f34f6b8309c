#!/usr/bin/env bash
# Sets up, builds (Release) and runs speedmon with the given arguments.
#   scripts/run.sh                       the embedded default config
#   scripts/run.sh --config my.toml
#   scripts/run.sh --demo                four fake emulators on 8081-8084 behind speedmon
#
# --demo writes its config to $SPEEDMON_DEMO_DIR (default build/demo): the embedded
# default (listeners 18081-18084, admin 8000) with each fake emulator watched as a
# [[processes]] entry, so the status page and the process metrics have data at once; its
# store is speedmon.db there. Ctrl-C or SIGTERM stops speedmon (which drains) and
# the fake emulators, and the script exits with speedmon's exit code.
#
# Environment: SPEEDMON_BIN=path runs that binary and skips installing and building.
# For the demo, SPEEDMON_DEMO_EMULATOR_PORTS, SPEEDMON_DEMO_LISTENER_PORTS (four ports
# each, space-separated) and SPEEDMON_DEMO_ADMIN_PORT move it off the default ports.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SPEEDMON_BIN:-}" ]; then
  bin=$SPEEDMON_BIN
else
  scripts/install-deps.sh
  scripts/build.sh release >&2
  bin=build/release/app/speedmon
fi
if [ "${1:-}" != "--demo" ]; then
  exec "$bin" "$@"
fi
shift

read -r -a emulator_ports <<<"${SPEEDMON_DEMO_EMULATOR_PORTS:-8081 8082 8083 8084}"
read -r -a listener_ports <<<"${SPEEDMON_DEMO_LISTENER_PORTS:-18081 18082 18083 18084}"
admin_port=${SPEEDMON_DEMO_ADMIN_PORT:-8000}
demo_dir=${SPEEDMON_DEMO_DIR:-build/demo}
if [ ${#emulator_ports[@]} -ne 4 ] || [ ${#listener_ports[@]} -ne 4 ]; then
  echo "run.sh --demo: SPEEDMON_DEMO_*_PORTS must name four ports each" >&2
  exit 2
fi
mkdir -p "$demo_dir"

fakes=()
speedmon_pid=
# Stops what this script started: speedmon first (SIGTERM: it drains and flushes its
# store), then the fake emulators. Runs once, on exit or on the first signal.
stop_all() {
  trap - EXIT INT TERM HUP
  local code=${1:-0}
  if [ -n "$speedmon_pid" ]; then
    kill -TERM "$speedmon_pid" 2>/dev/null || true
    wait "$speedmon_pid" 2>/dev/null && code=0 || code=$?
  fi
  if [ ${#fakes[@]} -gt 0 ]; then
    kill -TERM "${fakes[@]}" 2>/dev/null || true
    wait "${fakes[@]}" 2>/dev/null || true
  fi
  exit "$code"
}
trap 'stop_all 130' INT
trap 'stop_all 143' TERM
trap 'stop_all 129' HUP
trap 'stop_all $?' EXIT

for port in "${emulator_ports[@]}"; do
  /usr/bin/python3 tools/fake_emulator.py --port "$port" --quiet &
  fakes+=($!)
done

# The default config with the demo's ports, its store, and the fakes as [[processes]].
demo_abs=$(cd "$demo_dir" && pwd)
edits=(-e "s/\"127\.0\.0\.1:8000\"/\"127.0.0.1:$admin_port\"/"
       -e "s|^store_path = \"speedmon\.db\"|store_path = \"$demo_abs/speedmon.db\"|")
for i in 0 1 2 3; do
  edits+=(-e "s/\"127\.0\.0\.1:$((8081 + i))\"/\"127.0.0.1:${emulator_ports[$i]}\"/"
          -e "s/\"127\.0\.0\.1:$((18081 + i))\"/\"127.0.0.1:${listener_ports[$i]}\"/")
done
config=$demo_abs/speedmon.toml
{
  "$bin" --print-default-config | sed "${edits[@]}"
  for i in 0 1 2 3; do
    printf '\n[[processes]]\nname = "emulator-%d"\npid = %d\n' "$((i + 1))" "${fakes[$i]}"
  done
} >"$config"

# In the background, so this shell can take SIGTERM while speedmon runs.
"$bin" --config "$config" "$@" &
speedmon_pid=$!
wait "$speedmon_pid" && code=0 || code=$?
speedmon_pid=
stop_all "$code"
