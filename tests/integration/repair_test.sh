#!/bin/bash
# Automatic repair on real daemons: nine node daemons on loopback; node 1 pairs with nodes
# 2..9 (48 MiB each) and mounts a 4+2 volume on those leases with a 6 s host grace.
#  (a) a partner away for less than the grace period costs no repair traffic: its chunks turn
#      degraded at once, and healthy again when it is back, with zero bytes rebuilt;
#  (b) two partners killed (SIGKILL) and their homes deleted: status shows the chunks degraded
#      and then every chunk back at k+m healthy shards on the six partners left, while files are
#      written and read back the whole time (repair under load);
#      a partner killed with its disk kept comes back after the repair: its stale shards are
#      deleted and its room freed;
#  (c) two more partners killed: every file, old and written during the repair, reads back;
#  (d) unmounted, quid check opens the volume itself: a wrong passphrase is refused, and
#      --deep finds every shard where its record says.
# Usage (as root): repair_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup repair "${1:-}"

GRACE=6
FLAGS=(--contribute 1G --heartbeat 1s --lease-term 10m --notice 20s --grace 20s)
H=$S/n1

json_field() {  # json_field PATH: a field of node 1's status (PATH like repair.chunks_left)
  "$QUID" status --home "$H" --json | python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[k]
print(v)' "$1"
}
healthy_now() {
  "$QUID" status --home "$H" --json | python3 -c 'import json, sys
v = json.load(sys.stdin)
sys.exit(0 if v["chunks"] > 0 and v["chunks_healthy"] == v["chunks"] and v["repair"]["chunks_left"] == 0 else 1)'
}
wait_healthy() {  # wait_healthy SECONDS
  local i
  for i in $(seq $(($1 * 2))); do healthy_now && return 0; sleep 0.5; done
  return 1
}
wait_degraded() {
  local i
  for i in $(seq 20); do [ "$(json_field chunks_degraded)" -gt 0 ] && return 0; sleep 0.5; done
  return 1
}

check "nine node daemons in three sites; node 1 paired with eight partners; a 4+2 volume mounted with files"
BASE_FLAGS=("${FLAGS[@]}")
for i in $(seq 1 9); do FLAGS=("${BASE_FLAGS[@]}" --label "site=s$((i % 3))"); serve "$i"; done
FLAGS=("${BASE_FLAGS[@]}")  # restarted nodes keep no label: placement must cope
volume_on_partners 9 --host-grace "${GRACE}s"
wait_healthy 30 || fail "the volume is not healthy after writing: $(json_field chunks_healthy) of $(json_field chunks)"
it_log "  $(json_field chunks) chunks, all healthy; available $(json_field scheme_availability) at measured uptimes"
# Site s0 (nodes 3, 6, 9) has 3 of the 8 partners: plain ranking would give it 2.25 shards of
# a chunk on average; with no domain above m = 2 it holds at most 2 of each.
site0=$("$QUID" status --home "$H" --json | python3 -c 'import json, sys
v = json.load(sys.stdin); ports = sys.argv[1:]
print(sum(s["shard_count"] for s in v["stores"] if s["name"].rsplit(":", 1)[-1] in ports))' "${PORT[3]}" "${PORT[6]}" "${PORT[9]}")
[ "$site0" -le $((2 * $(json_field chunks))) ] || soft_fail "site s0 holds $site0 shards of $(json_field chunks) chunks: more than m = 2 per chunk"
it_log "  site s0 (3 of 8 partners) holds $site0 shards of $(json_field chunks) chunks"
[ "$(json_field placement_shortfall)" = 0 ] || soft_fail "placement_shortfall $(json_field placement_shortfall) with eight partners up"
"$QUID" status --home "$H" >"$S/status.txt" || fail "quid status failed"
grep -q "^available " "$S/status.txt" || soft_fail "quid status shows no scheme availability: $(head -c 600 "$S/status.txt")"

check "(a) a partner away for less than the grace period costs no repair traffic"
kill -KILL "${NODE_PID[5]}"
wait_degraded || soft_fail "(a) no chunk degraded after node 5 was killed"
sleep $((GRACE - 3))
[ "$(json_field repair.bytes_done)" = 0 ] || soft_fail "(a) repair moved $(json_field repair.bytes_done) bytes while node 5 was away within the grace"
serve 5
wait_healthy 20 || soft_fail "(a) not healthy again 20 s after node 5 came back"
[ "$(json_field repair.bytes_done)" = 0 ] || soft_fail "(a) a brief absence cost $(json_field repair.bytes_done) bytes of repair"
[ "$(json_field repair.chunks_done)" = 0 ] || soft_fail "(a) $(json_field repair.chunks_done) chunks rebuilt for a brief absence"

check "(b) two partners lost with their disks: repaired back to k+m while files are written and read"
set -- $(shuf -i 2-9 -n 4)
lost1=$1 lost2=$2 more1=$3 more2=$4
t0=$(date +%s)
find "$S/n$lost2/host/tenants" -name '*.shard' -type f >"$S/stale_shards"
for n in $lost1 $lost2; do kill -KILL "${NODE_PID[$n]}"; done
# Node $lost2's disk is set aside rather than deleted: it comes back with it below.
rm -rf "$S/n$lost1"
mv "$S/n$lost2" "$S/kept-n$lost2"
it_log "  killed nodes $lost1 and $lost2, homes gone"
wait_degraded || soft_fail "(b) no chunk degraded after losing nodes $lost1 and $lost2"
mkdir -p "$S/ref2" "$M/during"
n=0
until healthy_now && [ $(($(date +%s) - t0)) -ge $((GRACE + 2)) ]; do
  [ $(($(date +%s) - t0)) -lt 150 ] || fail "(b) 150 s after the loss: $(json_field chunks_healthy) of $(json_field chunks) healthy, repair.chunks_left $(json_field repair.chunks_left), degraded $(json_field chunks_degraded)"
  n=$((n + 1))
  head -c $((RANDOM * 20)) /dev/urandom >"$S/ref2/w$n"
  cp "$S/ref2/w$n" "$M/during/w$n"
  cmp -s "$M/big" "$S/ref/big" || soft_fail "(b) big differs while repairing (pass $n)"
  sleep 0.5
done
el=$(($(date +%s) - t0))
it_log "  healthy again $el s after the loss ($(json_field repair.chunks_done) chunks rebuilt, $(json_field repair.bytes_done) bytes); $n files written meanwhile"
[ "$(json_field repair.chunks_done)" -gt 0 ] || soft_fail "(b) healthy without rebuilding anything"
[ "$(json_field chunks_lost)" = 0 ] || soft_fail "(b) $(json_field chunks_lost) chunks lost"
sums "$S/ref2" "$S/sums2"
sync
wait_settled 120
wait_healthy 60 || soft_fail "(b) the files written during the repair left the volume unhealthy"

check "(b) quid check --deep: every shard where its record says, and right"
"$QUID" check --home "$H" --deep >"$S/check.out" 2>&1 || soft_fail "(b) quid check --deep failed: $(tail -1 "$S/check.out")"
grep -q " 0 missing, 0 corrupt, 0 on unreachable stores; 0 unrecoverable" "$S/check.out" ||
  soft_fail "(b) quid check --deep: $(tail -1 "$S/check.out")"
it_log "  $(tail -1 "$S/check.out")"

check "(b) node $lost2 comes back with its old disk: its stale shards are deleted, the room freed"
mv "$S/kept-n$lost2" "$S/n$lost2"
used_before=$(du -sb "$S/n$lost2/host/tenants" | cut -f1)
serve "$lost2"
stale=$(wc -l <"$S/stale_shards")
left=$stale
for i in $(seq 60); do
  left=0
  while read -r f; do [ -e "$f" ] && left=$((left + 1)); done <"$S/stale_shards"
  [ "$left" = 0 ] && break
  sleep 0.5
done
used_after=$(du -sb "$S/n$lost2/host/tenants" | cut -f1)
it_log "  $((stale - left)) of $stale stale shards deleted; its tenant area went from $((used_before / 1024)) to $((used_after / 1024)) KiB"
if [ "$left" != 0 ]; then
  soft_fail "(b) $left of node $lost2's $stale stale shards still there 30 s after it came back; the mount's log: $(grep -E "is back after|swept|sweep|unreferenced" "$S/mount.out" "$S"/n1/*.log 2>/dev/null | tail -3 | tr '\n' ' ')"
fi
wait_healthy 30 || soft_fail "(b) unhealthy after node $lost2 came back"
# Gone for good now, like node $lost1.
kill -KILL "${NODE_PID[$lost2]}"
rm -rf "$S/n$lost2"

check "(c) two more partners killed: every file reads back"
for n in $more1 $more2; do kill -KILL "${NODE_PID[$n]}"; done
for i in $(seq 20); do [ "$(json_field placement_shortfall)" = 2 ] && break; sleep 0.5; done
[ "$(json_field placement_shortfall)" = 2 ] || soft_fail "(c) with 4 partners left, placement_shortfall is $(json_field placement_shortfall), not 2"
"$QUID" check --home "$H" >"$S/check2.out" 2>&1 || soft_fail "(c) quid check with two hosts away failed: $(tail -1 "$S/check2.out")"
it_log "  $(tail -1 "$S/check2.out")"
drop_caches
verify_sums "$M" "$S/sums" "(c) the tree written first"
verify_sums "$M/during" "$S/sums2" "(c) the files written during the repair"
# Hosts back before the unmount: it would otherwise wait for nothing (all is stored).
for n in $more1 $more2; do serve "$n"; done

check "(d) unmounted: quid check opens the volume itself (a wrong passphrase is refused)"
quid_umount
if QUID_PASSPHRASE=wrong-passphrase "$QUID" check --home "$H" >"$S/check3.out" 2>&1; then
  soft_fail "(d) quid check with a wrong passphrase exited 0"
fi
grep -qi "passphrase" "$S/check3.out" || soft_fail "(d) a wrong passphrase: $(tail -1 "$S/check3.out")"
"$QUID" check --home "$H" --deep >"$S/check4.out" 2>&1 || soft_fail "(d) quid check --deep unmounted failed: $(tail -1 "$S/check4.out")"
grep -q " 0 missing, 0 corrupt, 0 on unreachable stores; 0 unrecoverable" "$S/check4.out" ||
  soft_fail "(d) quid check --deep unmounted: $(tail -1 "$S/check4.out")"
it_log "  $(tail -1 "$S/check4.out")"
it_done
it_log "PASS (repair back to full redundancy $el s after losing 2 of 8 partners, grace ${GRACE} s)"
