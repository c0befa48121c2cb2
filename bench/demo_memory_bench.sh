#!/usr/bin/env bash
# Peak RSS of every quid process of a local exchange while a big file is written through
# it, stored on the partners, and read back cold: `quid demo` (node 1's volume over six
# partners on loopback, 4+2), fio in 1 MiB blocks. The numbers go in docs/benchmarks.md.
# Run as root from the repository root:
#   bench/demo_memory_bench.sh [FILE_SIZE] [quid demo flags...]     default: 4G
# QUID=/path/to/quid skips the Release build. Needs about 2.6x FILE_SIZE of free disk under
# ${BENCH_DIR:-/var/tmp}; each node contributes 2x FILE_SIZE, so the file fits its leases.
set -euo pipefail
size=${1:-4G}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${QUID:-}" ]; then
  cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build/release" -j2 --target quid >/dev/null
  QUID=$root/build/release/cmd/quid
fi
bytes=$(numfmt --from=iec "$size")
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" quid-demo-mem.XXXXXX)
export QUID_PASSPHRASE=bench-passphrase
demo=
stop_demo() {
  [ -n "$demo" ] || return 0
  kill -TERM "$demo" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$demo" 2>/dev/null || break; sleep 0.5; done
  pkill -KILL -f "$work/" 2>/dev/null || true
  demo=
}
cleanup() { stop_demo; umount -l "$work/mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start_demo() {
  setsid "$QUID" demo --nodes 7 --workdir "$work/demo" --contribute $((bytes * 2)) "$@" \
    "$work/mnt" </dev/null >>"$work/demo.log" 2>&1 &
  demo=$!
  for _ in $(seq 120); do mountpoint -q "$work/mnt" && return 0; sleep 0.5; done
  echo "quid demo did not mount: $(tail -1 "$work/demo.log")" >&2
  exit 1
}
# One line per quid process of this run: its role and its peak RSS (VmHWM) so far.
peaks() {
  local pid role
  for pid in $(pgrep -f "quid.*$work/"); do
    role=$(tr '\0' ' ' <"/proc/$pid/cmdline" | awk '{print ($2 == "serve") ? "host " $4 : "mount (quid demo)"}')
    echo "  $role: $(awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$pid/status") MiB"
  done | sed "s|$work/demo/||"
}

mkdir -p "$work/mnt"
start_demo "$@"
fio --name=big --filename="$work/mnt/big" --rw=write --bs=1M --size="$size" --refill_buffers \
  --end_fsync=1 --output-format=terse --terse-version=3 | awk -F';' '{printf "write %d MB/s\n", $48/1024}'
until "$QUID" status --home "$work/demo/node1" --json 2>/dev/null | grep -q '"pending_bytes":0,'; do
  sleep 1
done
echo "wrote $size and stored it on the partners; peak RSS:"
peaks
stop_demo
start_demo "$@"
sync
echo 3 >/proc/sys/vm/drop_caches
fio --name=big --filename="$work/mnt/big" --rw=read --bs=1M --size="$size" \
  --output-format=terse --terse-version=3 | awk -F';' '{printf "read %d MB/s\n", $7/1024}'
echo "read $size back cold (a fresh demo, caches dropped); peak RSS:"
peaks
