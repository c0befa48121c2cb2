#!/bin/bash
# Repair on real daemons: nine node daemons on loopback; node 1 pairs with eight partners and
# mounts a 4+2 volume on their leases, writes N GiB of incompressible files and waits until
# they are stored; then one partner is killed (SIGKILL) and its home deleted. Measures the
# time from the kill back to every chunk at k+m healthy shards, the repair traffic (shards
# read plus written) and its rate over the rebuild itself (after the grace and detection),
# and the mount daemon's peak RSS. The numbers go in docs/benchmarks.md.
#   sudo bench/repair_daemons.sh [GIB] [QUID]     defaults: 1, build/release/cmd/quid
# Scratch on a tmpfs of 4 x GIB + 2 GiB (so the machine needs that much free memory).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
gib=${1:-1}
export IT_TMPFS_SIZE=$((4 * gib + 2))g
. "$root/tests/integration/lib.sh"
it_setup repair_bench "${2:-$root/build/release/cmd/quid}"

GRACE=2
lease_mib=$((gib * 1024 / 2 + 64))  # a partner's share of 1.5 x N over seven hosts, doubled
FLAGS=(--contribute "$((lease_mib * 2))M" --heartbeat 1s --lease-term 1h --notice 1m --grace 1m)
H=$S/n1
status_py() {
  "$QUID" status --home "$H" --json | python3 -c 'import json, sys
v = json.load(sys.stdin); r = v["repair"]
print(eval(sys.argv[1]))' "$1"
}
healthy() { [ "$(status_py 'v["chunks"] > 0 and v["chunks_healthy"] == v["chunks"] and r["chunks_left"] == 0')" = True ]; }
mount_pid() { pgrep -f "quid mount --home $H " | head -1; }

for i in $(seq 1 9); do serve "$i"; done
for i in $(seq 2 9); do
  join "$i" "$(invite 1 "${lease_mib}M")" || fail "node $i could not join: $(cat "$S/join.out")"
done
sleep 2
"$QUID" init --home "$H" --data 4 --parity 2 >"$S/init.log" 2>&1 || fail "init: $(tail -1 "$S/init.log")"
"$QUID" mount --home "$H" --cache-size 0 --host-grace "${GRACE}s" --repair-rate 0 \
  --journal-size 512M "$M" >"$S/mount.out" 2>&1 || fail "mount: $(tail -1 "$S/mount.out")"

it_log "writing $gib GiB in 64 MiB files"
t0=$(now_ms)
for f in $(seq 1 $((gib * 16))); do head -c $((64 * MiB)) /dev/urandom >"$M/f$f"; done
sync
wait_settled 600
it_log "  stored in $(((($(now_ms) - t0) + 500) / 1000)) s: $(status_py 'v["chunks"]') chunks"
for i in $(seq 60); do healthy && break; sleep 0.5; done
healthy || fail "not healthy after writing"

victim=5
held=$(find "$S/n$victim/host/tenants" -name '*.shard' -type f | wc -l)
held_bytes=$(du -sb "$S/n$victim/host/tenants" | cut -f1)
done0=$(status_py 'r["bytes_done"]')
kill -KILL "${NODE_PID[$victim]}"
t_kill=$(now_ms)
rm -rf "$S/n$victim"
it_log "killed node $victim, which held $held shards ($((held_bytes / MiB)) MiB); grace ${GRACE} s"
t_start=""
for i in $(seq 6000); do
  [ -z "$t_start" ] && [ "$(status_py 'r["chunks_left"] > 0')" = True ] && t_start=$(now_ms)
  healthy && [ "$(status_py 'v["chunks_degraded"]')" = 0 ] && break
  sleep 0.1
done
t_done=$(now_ms)
healthy || fail "not back to full redundancy in 600 s"
moved=$(($(status_py 'r["bytes_done"]') - done0))
total_s=$(echo "scale=2; ($t_done - $t_kill) / 1000" | bc)
rebuild_s=$(echo "scale=2; ($t_done - ${t_start:-$t_kill}) / 1000" | bc)
rate=$(echo "scale=0; $moved / 1000000 / $rebuild_s" | bc)
it_log "RESULT gib=$gib lost_shards=$held lost_mib=$((held_bytes / MiB)) traffic_mib=$((moved / MiB)) back_to_full_s=$total_s rebuild_s=$rebuild_s rate_mb_s=$rate peak_rss_mib=$(awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$(mount_pid)/status")"
it_done
