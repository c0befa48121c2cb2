#!/bin/bash
# Builds the libFuzzer targets with clang 14 in build/fuzz and runs each for a bounded time:
#   scripts/fuzz.sh [seconds] [target...]   (default: 30 s each, every target)
# The targets are the folders of tests/fuzz/corpus/. Each is built on its own (one that
# does not compile fails the run but does not stop the others) and runs against a scratch copy of its
# corpus, so the repository's corpus only changes by hand. A crashing input is saved in
# build/fuzz/artifacts/<target>/; copy it into tests/fuzz/corpus/<target>/ to keep it as a
# regression input (the <target>_replay tests then run it in every build). Exits non-zero
# if any target crashed, leaked, hit undefined behaviour or timed out on an input.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
case $seconds in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [seconds] [target...]" >&2; exit 2 ;;
esac
shift || true

# libFuzzer ships with clang, not GCC: clang-14 and its runtime libraries.
missing=()
for p in clang-14 libclang-rt-14-dev; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "fuzz.sh: run as root to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "fuzz.sh: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz.sh: no corpora in tests/fuzz/corpus" >&2; exit 1; }
for t in "${targets[@]}"; do
  [ -d "tests/fuzz/corpus/$t" ] || { echo "fuzz.sh: no corpus for $t in tests/fuzz/corpus" >&2; exit 2; }
done

# Everything the targets link is instrumented, not just the harnesses: ASan and UBSan
# through QUID_SANITIZE, and -fsanitize=fuzzer-no-link gives libFuzzer coverage of the
# decoders themselves. -O1 keeps it fast with usable stack traces.
build=build/fuzz
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link \
  -DQUID_FUZZ=ON -DQUID_SANITIZE=ON -DQUID_BENCHMARKS=OFF >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for t in "${targets[@]}"; do
  work=$build/corpus-run/$t
  artifacts=$build/artifacts/$t
  rm -rf "$work"
  mkdir -p "$work" "$artifacts"
  cp -a "tests/fuzz/corpus/$t/." "$work/"
  echo "== $t: build"
  if ! cmake --build "$build" -j2 --target "$t" >"$build/$t.build.log" 2>&1; then
    status=1
    echo "fuzz.sh: $t does not build; log in $build/$t.build.log" >&2
    grep -E "error" "$build/$t.build.log" | head -n 10 >&2 || true
    continue
  fi
  echo "== $t: ${seconds}s"
  if "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$work" 2>"$build/$t.log"; then
    grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$build/$t.log" || true
    tail -n 1 "$build/$t.log"
  else
    status=1
    echo "fuzz.sh: $t FAILED; log in $build/$t.log, input in $artifacts/" >&2
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$build/$t.log" >&2 || tail -n 20 "$build/$t.log" >&2
  fi
done

if [ "$status" -eq 0 ]; then echo "fuzz.sh: no crashes"; else echo "fuzz.sh: FAILED"; fi
exit "$status"
