#!/usr/bin/env bash
# Sets up and runs every test: unit, integration and e2e, then the same under ASan+UBSan,
# then each fuzz target for a few seconds (clang, ASan+UBSan+libFuzzer).
#   scripts/test.sh            all three flavours
#   scripts/test.sh release    only the release build (also: asan, fuzz)
#   SPEEDMON_TEST_FILTER=regex scripts/test.sh release   (a ctest -R filter)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
flavours=("${@:-release asan fuzz}")
read -r -a flavours <<<"${flavours[*]}"
status=0
for f in "${flavours[@]}"; do
  echo "== build $f"
  scripts/build.sh "$f"
  echo "== test $f"
  filter=()
  [ -n "${SPEEDMON_TEST_FILTER:-}" ] && filter=(-R "$SPEEDMON_TEST_FILTER")
  if ! (cd "build/$f" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure --timeout 600 -j 2 "${filter[@]}"); then
    status=1
  fi
done
exit $status
