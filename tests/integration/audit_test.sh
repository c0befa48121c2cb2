#!/bin/bash
# Audits on real daemons: nine node daemons on loopback (hosts scrub every 3 s); node 1 pairs
# with nodes 2..9 and mounts a 4+2 volume with a large audit budget.
#  (a) bits flipped on disk in 1% of all stored shards, across every host: every one is found
#      (the host's scrub marks it rotted, and the tenant's next audit or read learns of it) and
#      rebuilt elsewhere; no read ever returns a wrong byte;
#  (b) one host silently deletes a third of the shards it holds: audits catch it (no read asks),
#      it loses the volume's trust (quid status), and every shard it held moves off it;
#  (c) another host answers reads with garbage under valid checksums (its own scrub is
#      satisfied): reads still return the right bytes, audits catch it, it loses the volume's
#      trust, and every shard it held moves off it;
#  (d) then, with the two caught hosts and one more stopped, every file still reads back.
# Usage (as root): audit_test.sh PATH_TO_QUID PATH_TO_SHARD_FORGE
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup audit "${1:-}"
FORGE=${2:-$(dirname "$QUID")/../tests/shard_forge}
[ -x "$FORGE" ] || fail "no shard_forge at $FORGE (the second argument)"

FLAGS=(--contribute 1G --heartbeat 1s --lease-term 10m --notice 20s --grace 20s --scrub-interval 3)
H=$S/n1

status_py() {  # status_py EXPR: a Python expression over the status JSON `v`, printed
  "$QUID" status --home "$H" --json | python3 -c 'import json, sys
v = json.load(sys.stdin); r = v["repair"]
print(eval(sys.argv[1]))' "$1"
}
healthy() { [ "$(status_py 'v["chunks"] > 0 and v["chunks_healthy"] == v["chunks"] and r["chunks_left"] == 0')" = True ]; }
found() { status_py 'r["audit_failures"] + r["bad_shards"]'; }
shard_files() { find "$S/n$1/host/tenants" -name '*.shard' -type f; }
store_py() {  # store_py NODE EXPR: a Python expression over that node's store entry `s`
  local addr=127.0.0.1:${PORT[$1]}
  status_py "[$2 for s in v['stores'] if s['name'].endswith(':$addr')][0]"
}
# Waits up to 60 s for node $1 to be distrusted and the volume healthy again.
caught() {
  local i
  for i in $(seq 120); do
    [ "$(store_py "$1" "s['distrusted']")" = True ] && healthy && return 0
    sleep 0.5
  done
  return 1
}

check "nine node daemons; node 1's 4+2 volume on eight partners, with files"
for i in $(seq 1 9); do serve "$i"; done
volume_on_partners 9 --audit-budget 4G
for i in $(seq 60); do healthy && break; sleep 0.5; done
healthy || fail "not healthy after writing"
# Shards of chunks superseded while the tree was written go with the pending deletes: once
# those are done, every shard file on the hosts is one the volume's records name.
for i in $(seq 60); do [ "$(status_py 'v["pending_deletes"]')" = 0 ] && break; sleep 0.5; done

check "(a) bits flipped on disk in 1% of the stored shards"
for i in $(seq 2 9); do shard_files "$i"; done | shuf >"$S/all_shards"
total=$(wc -l <"$S/all_shards")
flips=$(((total + 99) / 100))
head -n "$flips" "$S/all_shards" >"$S/flipped"
f0=$(found)  # before the flips: the audits find the first ones within moments
while read -r f; do
  size=$(stat -c %s "$f")
  flip_byte "$f" $((24 + RANDOM * 32768 % (size - 24)))  # a payload byte, past the header
done <"$S/flipped"
it_log "  flipped one byte in $flips of $total shards"
drop_caches
verify_sums "$M" "$S/sums" "(a) read back right after the flips"
for i in $(seq 120); do
  [ $(($(found) - f0)) -ge "$flips" ] && healthy && break
  sleep 0.5
done
[ $(($(found) - f0)) -ge "$flips" ] || soft_fail "(a) only $(($(found) - f0)) of $flips rotted shards found in 60 s"
healthy || soft_fail "(a) not healthy 60 s after the flips: $(status_py 'v["chunks_healthy"], v["chunks"], r["chunks_left"]')"
it_log "  $(($(found) - f0)) bad shards found and rebuilt ($(status_py 'r["audited_chunks"]') chunks audited)"
left=0
while read -r f; do [ -e "$f" ] && left=$((left + 1)); done <"$S/flipped"
[ "$left" = 0 ] || soft_fail "(a) $left rotted shard files are still on their hosts (the repair removes a bad copy once rebuilt)"

check "(b) a host that silently deletes a third of its shards"
victim=$(shuf -i 2-9 -n 1)
shard_files "$victim" >"$S/victim_shards"
held=$(wc -l <"$S/victim_shards")
shuf -n $((held / 3)) "$S/victim_shards" | xargs -r rm -f
it_log "  node $victim deleted $((held / 3)) of its $held shards"
caught "$victim" || soft_fail "(b) node $victim not caught, or the volume not healthy again: audits $(store_py "$victim" "(s['audits_ok'], s['audits_failed'], s['distrusted'])")"
it_log "  node $victim distrusted; every chunk whole without it (it still holds $(store_py "$victim" "s['shard_count']") files until the sweep)"

check "(c) a host that answers reads with garbage under valid checksums"
liar=$(shuf -i 2-9 -n 8 | grep -vx "$victim" | head -1)
shard_files "$liar" >"$S/liar_shards"
held=$(wc -l <"$S/liar_shards")
shuf -n $((held / 2)) "$S/liar_shards" | xargs -r "$FORGE"
it_log "  node $liar now serves garbage for $((held / 2)) of its $held shards"
drop_caches
verify_sums "$M" "$S/sums" "(c) read back while node $liar lies"
caught "$liar" || soft_fail "(c) node $liar not caught, or the volume not healthy again: audits $(store_py "$liar" "(s['audits_ok'], s['audits_failed'], s['distrusted'])")"
# Healthy with the liar distrusted: every chunk has its k+m shards on the other hosts.
it_log "  node $liar distrusted after $(store_py "$liar" "s['audits_failed']") failed audits; every chunk whole without it"

check "(d) nodes $victim and $liar and one more host stopped: every file reads back"
third=$(shuf -i 2-9 -n 8 | grep -vx "$victim" | grep -vx "$liar" | head -1)
for n in "$victim" "$liar" "$third"; do kill -KILL "${NODE_PID[$n]}"; done
drop_caches
verify_sums "$M" "$S/sums" "(d) with the deleter, the liar and one more host stopped"
for n in "$victim" "$liar" "$third"; do serve "$n"; done
it_done
it_log "PASS ($flips rotted shards, a deleting host and a lying host caught and repaired)"
