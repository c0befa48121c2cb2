#!/bin/bash
# Configures and builds one flavour of the project in build/<flavour>:
#   scripts/build.sh [Debug|Release|Asan] [cmake --build arguments...]
# Asan is a Debug build with AddressSanitizer and UndefinedBehaviorSanitizer. Two jobs, since
# the machines this runs on have two cores; ccache is used when installed.
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-Debug}
shift || true
case $flavour in
  Debug) dir=build/debug; args=(-DCMAKE_BUILD_TYPE=Debug) ;;
  Release) dir=build/release; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  Asan) dir=build/asan; args=(-DCMAKE_BUILD_TYPE=Debug -DQUID_SANITIZE=ON -DQUID_BENCHMARKS=OFF) ;;
  *) echo "usage: scripts/build.sh [Debug|Release|Asan] [cmake --build arguments...]" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" "${args[@]}" >/dev/null
cmake --build "$dir" -j2 "$@"
echo "build.sh: $flavour build in $dir"
