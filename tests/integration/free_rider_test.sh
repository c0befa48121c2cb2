#!/bin/bash
# A free rider, and lease end without loss, on loopback: eight node daemons; node 1 pairs with
# nodes 2..8 and node 2 with nodes 3..8 (24 MiB each way), so nodes 1 and 2 each have seven
# partners and a 4+2 volume on their leases, mounted, each holding files.
#  (a) node 2 revokes what it gives node 1 (quid lease revoke): node 1's node acknowledges the
#      notice at once, and its reciprocity answers by revoking what it gives node 2;
#  (b) within the notice, node 1's volume moves every shard off node 2 and node 2's volume
#      every shard off node 1 (quid status shows those stores draining, then empty);
#  (c) after the leases have ended and the grace period passed, each volume reads back exactly
#      with its former partner and two common partners stopped: with four of six shards left,
#      that holds only if none stayed on the partner whose lease ended;
#  (d) quid ledger on both sides agrees on what each holds for the other, and every daemon
#      restarted leaves each ledger exactly as it was.
# Usage (as root): free_rider_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup free_rider "${1:-}"

NOTICE=15
GRACE=10
FLAGS=(--contribute 1G --heartbeat 1s --lease-term 10m --notice "${NOTICE}s" --grace "${GRACE}s")
CAP=24M

status_of() { "$QUID" status --home "$S/n$1" --json; }
# shards_on NODE ADDR: how many shards node NODE's volume has on the store at ADDR
shards_on() {
  status_of "$1" | python3 -c 'import json, sys
addr = sys.argv[1]
print(sum(s["shard_count"] for s in json.load(sys.stdin)["stores"] if s["name"].endswith(":" + addr)))' "$2"
}
draining_on() {
  status_of "$1" | python3 -c 'import json, sys
addr = sys.argv[1]
print(any(s.get("draining") for s in json.load(sys.stdin)["stores"] if s["name"].endswith(":" + addr)))' "$2"
}
state_of() {  # state_of NODE DIRECTION PEER_NODE: the state of NODE's lease with PEER_NODE
  leases "$1" | awk -v d="$2" -v p="$(fp "$3")" '$1 == d && $3 == p {print $2; exit}'
}

check "eight node daemons; nodes 1 and 2 each paired with seven partners"
for i in 1 2 3 4 5 6 7 8; do serve "$i"; done
for i in 2 3 4 5 6 7 8; do join "$i" "$(invite 1 "$CAP")" || fail "node $i could not join node 1: $(cat "$S/join.out")"; done
for i in 3 4 5 6 7 8; do join "$i" "$(invite 2 "$CAP")" || fail "node $i could not join node 2: $(cat "$S/join.out")"; done

check "a 4+2 volume on each of nodes 1 and 2, mounted, with files"
for n in 1 2; do
  "$QUID" init --home "$S/n$n" --data 4 --parity 2 >"$S/init$n.log" 2>&1 || fail "quid init on node $n failed: $(tail -1 "$S/init$n.log")"
  mkdir -p "$S/m$n"
  "$QUID" mount --home "$S/n$n" --cache-size 0 "$S/m$n" >>"$S/mount.out" 2>&1 || fail "node $n's volume did not mount: $(tail -1 "$S/mount.out")"
  write_mixed_tree "$S/ref$n" 4
  head -c $((6 * MiB)) /dev/urandom >"$S/ref$n/big"
  sums "$S/ref$n" "$S/sums$n"
  cp -a "$S/ref$n/." "$S/m$n/"
done
sync
H=$S/n1 wait_settled 120
H=$S/n2 wait_settled 120
a1=127.0.0.1:${PORT[1]}
a2=127.0.0.1:${PORT[2]}
[ "$(shards_on 1 "$a2")" -gt 0 ] && [ "$(shards_on 2 "$a1")" -gt 0 ] || fail "the volumes placed nothing on each other to begin with"

check "(a) node 2 revokes what it gives node 1; node 1 answers in kind"
t0=$(date +%s)
"$QUID" lease --home "$S/n2" revoke "$(fp 1)" >"$S/revoke.out" 2>&1 || fail "(a) quid lease revoke failed: $(cat "$S/revoke.out")"
it_log "  $(cat "$S/revoke.out")"
for i in $(seq 40); do [ "$(state_of 1 received 2)" = expiring ] && break; sleep 0.25; done
[ "$(state_of 1 received 2)" = expiring ] || fail "(a) node 1 holds its lease from node 2 as '$(state_of 1 received 2)', not expiring"
for i in $(seq 40); do [ "$(state_of 1 given 2)" = expiring ] && break; sleep 0.25; done
[ "$(state_of 1 given 2)" = expiring ] || fail "(a) node 1's reciprocity did not revoke what it gives node 2: '$(state_of 1 given 2)'"
[ "$(state_of 2 received 1)" = expiring ] || fail "(a) node 2 does not know its lease from node 1 is expiring: '$(state_of 2 received 1)'"
for p in 3 4 5 6 7 8; do
  [ "$(state_of 1 given "$p")" = active ] || fail "(a) node 1's lease to node $p changed: '$(state_of 1 given "$p")'"
done
it_log "  both leases expiring $(($(date +%s) - t0)) s after the revocation"

check "(b) within the notice, each volume moves its shards off the other node"
for i in $(seq 20); do [ "$(draining_on 1 "$a2")" = True ] && break; sleep 0.25; done
[ "$(draining_on 1 "$a2")" = True ] || fail "(b) node 1's volume does not show node 2's store draining: $(status_of 1 | head -c 1500); node: $(python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"{\"op\":\"stores\"}\n"); print(s.recv(65536).decode())' "$S/n1/node.sock")"
for i in $(seq $((NOTICE * 4))); do
  [ "$(shards_on 1 "$a2")" = 0 ] && [ "$(shards_on 2 "$a1")" = 0 ] && break
  sleep 0.25
done
[ "$(shards_on 1 "$a2")" = 0 ] || fail "(b) node 1's volume still has $(shards_on 1 "$a2") shards on node 2 after the notice"
[ "$(shards_on 2 "$a1")" = 0 ] || fail "(b) node 2's volume still has $(shards_on 2 "$a1") shards on node 1 after the notice"
it_log "  moved $(($(date +%s) - t0)) s after the revocation"

check "(d) the ledgers agree on what each node holds for the other"
ledger_field() {  # ledger_field NODE PEER_NODE FIELD
  "$QUID" ledger --home "$S/n$1" --json | python3 -c 'import json, sys
p, f = sys.argv[1], sys.argv[2]
print([x[f] for x in json.load(sys.stdin)["peers"] if x["peer"] == p][0])' "$(fp "$2")" "$3"
}
sleep 2  # one heartbeat and one lease refresh after the last move
for pair in "3 1" "4 2" "5 1"; do
  set -- $pair
  held_for=$(ledger_field "$1" "$2" held_for_peer_bytes)
  held_by=$(ledger_field "$2" "$1" held_by_peer_bytes)
  [ "$held_for" = "$held_by" ] || fail "(d) node $1 holds $held_for bytes for node $2, node $2 counts $held_by there"
done
[ "$(ledger_field 2 1 held_by_peer_bytes)" = 0 ] || fail "(d) node 2's ledger says node 1 still holds its bytes"
ledger_view() {  # what must survive a restart exactly (uptime moves with every heartbeat)
  "$QUID" ledger --home "$S/n$1" --json | python3 -c 'import json, sys
for p in sorted(json.load(sys.stdin)["peers"], key=lambda p: p["peer"]):
    print(p["peer"], p["given_bytes"], p["received_bytes"], p["held_for_peer_bytes"],
          p["held_by_peer_bytes"], p["ratio"], p["standing"])'
}
for i in 1 2 3; do ledger_view "$i" >"$S/ledger$i.before"; done
for i in 1 2 3 4 5 6 7 8; do kill "${NODE_PID[$i]}"; done
for i in 1 2 3 4 5 6 7 8; do
  for j in $(seq 50); do kill -0 "${NODE_PID[$i]}" 2>/dev/null || break; sleep 0.1; done
done
for i in 1 2 3 4 5 6 7 8; do serve "$i"; done
for i in 1 2 3; do
  ledger_view "$i" >"$S/ledger$i.after"
  diff "$S/ledger$i.before" "$S/ledger$i.after" >/dev/null \
    || fail "(d) node $i's ledger changed across a restart: $(diff "$S/ledger$i.before" "$S/ledger$i.after" | head -4)"
done
it_log "  every daemon restarted: the ledgers of nodes 1, 2, 3 are exactly as before"
held=$(ledger_field 3 1 held_for_peer_bytes)
[ "$held" -gt 0 ] || fail "(d) node 3 holds nothing for node 1"
it_log "  node 3 holds $held bytes for node 1, as node 1 counts them"

check "(c) after the leases ended and the grace passed, each volume reads without the other"
sleep $((NOTICE + GRACE + 2 - ($(date +%s) - t0) > 0 ? NOTICE + GRACE + 2 - ($(date +%s) - t0) : 0))
[ "$(state_of 1 given 2)" = revoked ] || fail "(c) node 1's lease to node 2 is '$(state_of 1 given 2)' after the notice, not revoked"
# nothing of either volume is left on the other: the tenants removed their old copies as they
# moved them (a host deletes what a tenant left only after the grace: unit-tested)
for i in $(seq 40); do
  [ "$(ledger_field 1 2 held_for_peer_bytes)$(ledger_field 2 1 held_for_peer_bytes)" = 00 ] && break
  sleep 0.5
done
[ "$(ledger_field 1 2 held_for_peer_bytes)" = 0 ] || fail "(c) node 1 still holds $(ledger_field 1 2 held_for_peer_bytes) bytes for node 2 after the grace period"
[ "$(ledger_field 2 1 held_for_peer_bytes)" = 0 ] || fail "(c) node 2 still holds $(ledger_field 2 1 held_for_peer_bytes) bytes for node 1 after the grace period"
it_log "  neither host holds anything of the other's any more"
# node 2's volume without nodes 1, 3 and 4
for i in 1 3 4; do kill -9 "${NODE_PID[$i]}"; done
drop_caches
H=$S/n2 verify_sums "$S/m2" "$S/sums2" "(c) node 2's volume with nodes 1, 3, 4 stopped"
[ "$VERIFY_OK" = 1 ] || fail "(c) node 2's volume did not read back: a shard stayed on node 1"
# node 1's volume without nodes 2, 3 and 4
serve 1
kill -9 "${NODE_PID[2]}"
drop_caches
verify_sums "$S/m1" "$S/sums1" "(c) node 1's volume with nodes 2, 3, 4 stopped"
[ "$VERIFY_OK" = 1 ] || fail "(c) node 1's volume did not read back: a shard stayed on node 2"
for n in 1 2; do fusermount3 -u "$S/m$n" 2>/dev/null || umount -l "$S/m$n"; done
it_done
