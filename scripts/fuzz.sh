#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, two at a time, from the
# seed corpus in fuzz/corpus/<target> plus what earlier runs found (build/fuzz/fuzz/corpus),
# and prints one line per target: executions per second, edges covered, corpus size and
# crashes. A crash's input is kept in build/fuzz/artifacts/<target>/; replay it with
#   build/fuzz/fuzz/<target>_fuzz build/fuzz/artifacts/<target>/crash-...
#   scripts/fuzz.sh 600                  every target, 10 minutes each
#   scripts/fuzz.sh 60 http_request url  two targets, one minute each
#   FUZZ_JOBS=1 scripts/fuzz.sh 600      one target at a time (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
scripts/install-deps.sh
scripts/build.sh fuzz >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in build/fuzz/fuzz/*_fuzz; do targets+=("$(basename "$f" _fuzz)"); done
fi
logs=build/fuzz/logs
mkdir -p "$logs"

run_one() {
  local t=$1 dict=() work=build/fuzz/fuzz/corpus/$1 art=build/fuzz/artifacts/$1
  mkdir -p "$work" "$art"
  case $t in
    http_request|http_response|header_rewrite) dict=(-dict=fuzz/dict/http.dict) ;;
    ingest|alert_rule) dict=(-dict=fuzz/dict/json.dict) ;;
    config) dict=(-dict=fuzz/dict/toml.dict) ;;
  esac
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "build/fuzz/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" "$work" "fuzz/corpus/$t" \
    >"$logs/$t.log" 2>&1 || true
}

pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "${FUZZ_JOBS:-2}" ]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
wait

status=0
printf '%-18s %10s %8s %8s %8s %s\n' target execs/s edges corpus crashes seconds
for t in "${targets[@]}"; do
  log=$logs/$t.log
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$done_line" | grep -oE '[0-9]+' || echo '?')
  corp=$(grep -oE 'corp: [0-9]+' <<<"$done_line" | grep -oE '[0-9]+' || echo '?')
  crashes=$(find "build/fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  [ "$crashes" -gt 0 ] && status=1
  printf '%-18s %10s %8s %8s %8s %s\n' "$t" "$execs" "$cov" "$corp" "$crashes" "$seconds"
done
exit $status
