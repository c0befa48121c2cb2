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
scripts/build.sh Debug
echo "== ctest: Debug build, all tests"
(cd build/debug && ctest --output-on-failure -j2) || status=1

echo "== fuzz: each libFuzzer target for a bounded time (clang 14)"
scripts/fuzz.sh "${QUID_FUZZ_SECONDS:-20}" || status=1

scripts/build.sh Asan
echo "== ctest: ASan+UBSan build, unit tests"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j2 -L unit) || status=1

if [ "$status" -eq 0 ]; then echo "test.sh: all tests passed"; else echo "test.sh: FAILED"; fi
exit "$status"
