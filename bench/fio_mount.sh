#!/usr/bin/env bash
# Sequential throughput through quidfs, side by side with the local disk and gocryptfs
# (the same files, the same disk, the same run): a volume over 6 local folder stores, and
# `quid demo` (6 hosts on loopback, every shard over TCP through the secure channel); plus
# the mount daemon's peak RSS. Run as root from the repository root:
#   bench/fio_mount.sh [SIZE]        SIZE defaults to 1G (fio syntax)
# QUID=/path/to/quid skips the Release build.
set -euo pipefail
size=${1:-1G}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${QUID:-}" ]; then
  cmake -S "$root" -B "$root/build/Release" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build/Release" -j2 --target quid >/dev/null
  QUID=$root/build/Release/cmd/quid
fi
for tool in fio gocryptfs fusermount3; do
  command -v $tool >/dev/null || { echo "missing $tool (scripts/install-deps.sh installs it)"; exit 1; }
done

work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" quid-bench.XXXXXX)
export QUID_PASSPHRASE=bench-passphrase
cleanup() {
  [ -n "${demo_pid:-}" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
  for m in "$work/qmnt" "$work/gmnt" "$work/dmnt"; do mountpoint -q "$m" && fusermount3 -u "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

# Wait until both cores are mostly idle, so background work (a flusher finishing the
# last round) does not run inside the next measurement.
wait_idle() {
  local quiet=0 a b tot k
  for _ in $(seq 120); do
    a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat)); tot=0
    for k in 1 2 3 4 5 6 7 8; do tot=$((tot + ${b[$k]} - ${a[$k]})); done
    if [ $tot -gt 0 ] && [ $(((${b[4]} - ${a[4]}) * 100 / tot)) -ge 85 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    [ $quiet -ge 2 ] && return 0
  done
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
write_mbs() {
  fio --name=seqw --directory="$1" --rw=write --bs=1M --size="$size" --end_fsync=1 \
    --output-format=terse --terse-version=3 | awk -F';' '{printf "%d", $48/1024}'
}
read_mbs() {
  fio --name=seqw --directory="$1" --rw=read --bs=1M --size="$size" \
    --output-format=terse --terse-version=3 | awk -F';' '{printf "%d", $7/1024}'
}
quid_mount() {
  "$QUID" mount --home "$work/home" "$work/qmnt"
  pid=$(pgrep -f "quid mount --home $work/home" | head -1)
}
peak_rss_mib() { awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$1/status"; }

mkdir -p "$work/local" "$work/qmnt" "$work/gmnt" "$work/gcipher" "$work/dmnt"
"$QUID" init --home "$work/home" --data 4 --parity 2 \
  $(for i in 1 2 3 4 5 6; do echo --store "$work/store$i"; done) >/dev/null
echo "$QUID_PASSPHRASE" >"$work/gpass"
gocryptfs -q -init -passfile "$work/gpass" "$work/gcipher" >/dev/null
gocryptfs -q -passfile "$work/gpass" "$work/gcipher" "$work/gmnt"
quid_mount

wait_idle; local_w=$(write_mbs "$work/local")
wait_idle; gocrypt_w=$(write_mbs "$work/gmnt")
wait_idle; quid_w=$(write_mbs "$work/qmnt")
wait_idle
rss_write=$(peak_rss_mib "$pid")
# Cold reads: stored chunks only (remount empties quid's cache), page cache dropped.
"$QUID" umount "$work/qmnt" >/dev/null
while pgrep -f "quid mount --home $work/home" >/dev/null; do sleep 0.2; done
quid_mount
drop_caches; local_r=$(read_mbs "$work/local")
drop_caches; gocrypt_r=$(read_mbs "$work/gmnt")
drop_caches; quid_r=$(read_mbs "$work/qmnt")
rss_read=$(peak_rss_mib "$pid")

# The same through quid demo: 6 hosts on loopback.
start_demo() {
  "$QUID" demo --hosts 6 --workdir "$work/demo" "$work/dmnt" >>"$work/demo.log" 2>&1 &
  demo_pid=$!
  for _ in $(seq 120); do mountpoint -q "$work/dmnt" && return 0; sleep 0.5; done
  echo "quid demo did not mount: $(tail -2 "$work/demo.log")"; exit 1
}
stop_demo() { kill "$demo_pid"; wait "$demo_pid" || true; demo_pid=; }
start_demo
wait_idle; demo_w=$(write_mbs "$work/dmnt")
wait_idle; stop_demo; start_demo  # a fresh mount: cold cache
drop_caches; demo_r=$(read_mbs "$work/dmnt")
stop_demo

ratio() { echo "scale=2; $1 / $2" | bc; }
echo "sequential 1 MiB blocks, $size, fsync at end; cold reads; MB/s"
printf '%-14s %8s %8s\n' "" write read
printf '%-14s %8s %8s\n' local "$local_w" "$local_r"
printf '%-14s %8s %8s\n' gocryptfs "$gocrypt_w" "$gocrypt_r"
printf '%-14s %8s %8s\n' quid-folders "$quid_w" "$quid_r"
printf '%-14s %8s %8s\n' quid-demo "$demo_w" "$demo_r"
echo "quid (folder stores)/local: write x$(ratio "$quid_w" "$local_w"), read x$(ratio "$quid_r" "$local_r")"
echo "quid (folder stores)/gocryptfs: write x$(ratio "$quid_w" "$gocrypt_w"), read x$(ratio "$quid_r" "$gocrypt_r")"
echo "quid demo (6 hosts)/local: write x$(ratio "$demo_w" "$local_w"), read x$(ratio "$demo_r" "$local_r")"
echo "quid demo (6 hosts)/gocryptfs: write x$(ratio "$demo_w" "$gocrypt_w"), read x$(ratio "$demo_r" "$gocrypt_r")"
echo "quid mount daemon peak RSS: ${rss_write} MiB writing (and flushing) $size, ${rss_read} MiB reading it"
