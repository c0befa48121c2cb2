#!/bin/bash
# Everything CI runs: dependencies, a Debug build with every test (unit and integration; the
# integration tests mount FUSE volumes and make network namespaces, so run as root), each
# libFuzzer target for a bounded time (clang 14), then the unit tests again under
# AddressSanitizer and UndefinedBehaviorSanitizer. Exits non-zero if any test fails.
set -euo pipefail
# Root for FUSE mounts (and, for tests, network namespaces): a user with sudo is asked once.
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "$0: run this as root (sudo is not installed)" >&2; exit 1; }
  exec sudo -E "$0" "$@"
fi
cd "$(dirname "$0")/.."

scripts/install-deps.sh

status=0
failures=()  # one line per failed phase, repeated at the very end (a CI log shows its tail)
# The names ctest recorded as failed in its last run in build dir $1.
failed_tests() {
  local log=$1/Testing/Temporary/LastTestsFailed.log
  [ -f "$log" ] && cut -d: -f2- "$log" | tr '\n' ' '
}

scripts/build.sh Debug
echo "== ctest: Debug build, all tests"
if ! (cd build/debug && ctest --output-on-failure -j2); then
  status=1
  failures+=("Debug ctest: $(failed_tests build/debug)")
fi

echo "== fuzz: each libFuzzer target for a bounded time (clang 14)"
if ! scripts/fuzz.sh "${QUID_FUZZ_SECONDS:-20}" 2>&1 | tee build/fuzz.out; then
  status=1
  failures+=("fuzz: $(grep -E 'FAILED|does not build' build/fuzz.out | tr '\n' ' ')")
fi

scripts/build.sh Asan
echo "== ctest: ASan+UBSan build, unit tests"
if ! (cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j2 -L unit); then
  status=1
  failures+=("ASan ctest: $(failed_tests build/asan)")
fi

if [ "$status" -eq 0 ]; then
  echo "test.sh: all tests passed"
else
  for f in "${failures[@]}"; do echo "test.sh: failed: $f"; done
  echo "test.sh: FAILED"
fi
exit "$status"
