#!/usr/bin/env bash
# Peak RSS of the mount daemon under the loads that could make it grow: a directory of
# 100k entries (created, listed, stat'ed) and a big file written and read back. The
# numbers go in docs/benchmarks.md. Run as root from the repository root:
#   bench/memory_bench.sh [FILE_SIZE] [ENTRIES]     defaults: 10G 100000
# QUID=/path/to/quid skips the Release build. Needs about 2.6x FILE_SIZE of free disk
# under ${BENCH_DIR:-/var/tmp} (stores at 1.5x plus the journal).
set -euo pipefail
size=${1:-10G}
entries=${2:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${QUID:-}" ]; then
  cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build/release" -j2 --target quid >/dev/null
  QUID=$root/build/release/cmd/quid
fi
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" quid-mem.XXXXXX)
export QUID_PASSPHRASE=bench-passphrase
cleanup() { mountpoint -q "$work/mnt" && "$QUID" umount --force "$work/mnt" >/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$QUID" init --home "$work/home" $(for i in 1 2 3 4 5 6; do echo --store "$work/store$i"; done) >/dev/null
mkdir -p "$work/mnt"
"$QUID" mount --home "$work/home" "$work/mnt" >/dev/null
pid=$(pgrep -f "quid mount --home $work/home" | head -1)
rss() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$pid/status"; }
hwm() { awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$pid/status"; }
echo "after mount: RSS $(rss) MiB"

start=$(date +%s.%N)
python3 - "$work/mnt/dir" "$entries" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
for i in range(n):
    os.close(os.open(f"{d}/entry-{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644))
PY
created=$(date +%s.%N)
listed=$(ls -f "$work/mnt/dir" | wc -l)
stat_count=$(find "$work/mnt/dir" -type f | wc -l)
done_at=$(date +%s.%N)
echo "$entries entries: created in $(echo "$created - $start" | bc) s, listed $((listed - 2)) and stat'ed $stat_count in $(echo "$done_at - $created" | bc) s; peak RSS $(hwm) MiB"

start=$(date +%s.%N)
fio --name=big --filename="$work/mnt/big" --rw=write --bs=1M --size="$size" --refill_buffers \
  --end_fsync=1 --output-format=terse --terse-version=3 | awk -F';' '{printf "write %d MB/s\n", $48/1024}'
echo "wrote $size (fsync returned): peak RSS $(hwm) MiB"
# Let the flusher store everything, then read the peak again: that covers flushing.
until "$QUID" status --home "$work/home" --json | grep -q '"pending_bytes":0,'; do sleep 1; done
echo "stored $size on the stores: peak RSS $(hwm) MiB"
"$QUID" umount "$work/mnt" | tail -1
"$QUID" mount --home "$work/home" "$work/mnt" >/dev/null
pid=$(pgrep -f "quid mount --home $work/home" | head -1)
sync; echo 3 >/proc/sys/vm/drop_caches
fio --name=big --filename="$work/mnt/big" --rw=read --bs=1M --size="$size" \
  --output-format=terse --terse-version=3 | awk -F';' '{printf "read %d MB/s\n", $7/1024}'
echo "read $size back (fresh mount): peak RSS $(hwm) MiB"
