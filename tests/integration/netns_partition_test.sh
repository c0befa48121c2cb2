#!/bin/bash
# A host cut off the network rather than killed. Six `quid serve` hosts, each in a network
# namespace this script creates (ip netns + a veth pair; addresses from one private /24 that exists
# only on these veths; no default route anywhere in the namespaces, and a blackhole route for the
# /24 in the root namespace so nothing for it ever leaves by the machine's default route). The
# tenant's volume (4+2, --cache-size 0) is mounted in the root namespace (TRAPS.md: a FUSE mount
# made under `ip netns exec` is invisible outside).
#  1. write a tree; every store reachable; every file verifies;
#  2. cut one host off (its namespace-side link down: packets to it vanish silently, no reset,
#     no ICMP): a full read of the tree (no cache) completes and verifies within 30 s, and
#     `quid status --json` shows that store unreachable within 20 s (every status call answering
#     within 10 s meanwhile), and statfs (df) of the mount answers within 5 s;
#  3. writes continue: a new batch written and synced is stored (0 bytes pending, within 120 s)
#     and reads back exactly;
#  4. link up again: within 30 s status shows the store reachable, and a new batch puts shards
#     on it again (its shard count in status and its shard files on disk grow); all verifies;
#  5. two other hosts cut at once, and at that moment a full read and a new batch start: the read
#     verifies within 30 s, the batch is stored and reads back; both links back: reachable within 30 s;
#  6. the tenant's TCP connections only ever go to the addresses created here; quid umount exits 0.
# Everything (hosts, namespaces, links, the route) is removed on exit, whatever the outcome.
# Usage (as root): netns_partition_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup netns_partition "${1:-}"
snapshot_quid
command -v ip >/dev/null || fail "ip is missing (apt install iproute2)"
command -v ss >/dev/null || fail "ss is missing (apt install iproute2)"

N=6
PORT=7000
CUT=3 # the host that gets cut off alone
CUT2=2 # the two cut off together later
CUT3=5
LETTERS=(- A B C D E F)
NAMESPACES=() # created so far (for cleanup)
ROOT_LINKS=()
BLACKHOLE=""
HOST_PIDS=()

nt_cleanup() {
  local p ns l
  for p in "${HOST_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${HOST_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  for l in "${ROOT_LINKS[@]}"; do ip link show "$l" >/dev/null 2>&1 && ip link del "$l" 2>/dev/null; done
  [ -z "$BLACKHOLE" ] || ip route del blackhole "$BLACKHOLE" 2>/dev/null
  for ns in "${NAMESPACES[@]}"; do
    ip netns list | grep -qw "$ns" && printf '%s: cleanup: network namespace %s is still there\n' "$IT_NAME" "$ns" >&2
  done
  return 0
}
nt_on_exit() {
  local rc=$?
  trap - ERR
  set +e
  nt_cleanup
  (exit "$rc")
  it_cleanup
}
trap nt_on_exit EXIT

# A /24 under 10.213.0.0/16 that no address or route of the root namespace touches.
NET=""
for x in $(seq $(($$ % 200 + 20)) 254) $(seq 20 254); do
  if ! ip -4 route show table all | grep -q "10\.213\.$x\." && ! ip -4 addr show | grep -q "10\.213\.$x\."; then
    NET=10.213.$x
    break
  fi
done
[ -n "$NET" ] || fail "no free /24 under 10.213.0.0/16 in the root namespace"
ns_of() { echo "qtest$$${LETTERS[$1]}"; }
root_if() { echo "qr$$${LETTERS[$1],,}"; }
ns_if() { echo "qn$$${LETTERS[$1],,}"; }
host_ip() { echo "$NET.$((4 * $1 + 2))"; }  # /30 per host: .4i+1 root side, .4i+2 namespace side
addr_of() { echo "$(host_ip "$1"):$PORT"; }

check "create $N network namespaces (qtest$$A..F), veth pairs with /30s of $NET.0/24, no default routes"
ip route add blackhole "$NET.0/24"
BLACKHOLE=$NET.0/24
for i in $(seq 1 $N); do
  ns=$(ns_of "$i")
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip link add "$(root_if "$i")" type veth peer name "$(ns_if "$i")" netns "$ns"
  ROOT_LINKS+=("$(root_if "$i")")
  ip addr add "$NET.$((4 * i + 1))/30" dev "$(root_if "$i")"
  ip link set "$(root_if "$i")" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$(host_ip "$i")/30" dev "$(ns_if "$i")"
  ip -n "$ns" link set "$(ns_if "$i")" up
  [ -z "$(ip -n "$ns" route show default)" ] || fail "namespace $ns has a default route"
  routes=$(ip -n "$ns" -4 route show | awk '{print $1}' | tr '\n' ' ')
  [ "$routes" = "$NET.$((4 * i))/30 " ] || fail "namespace $ns has routes beyond its /30: $routes"
done
it_log "  hosts at $(for i in $(seq 1 $N); do printf '%s ' "$(addr_of "$i")"; done)"

check "start a quid serve in each namespace admitting the tenant; quid init pins them; mount in the root namespace"
FP=$(node_fingerprint "$H")
it_log "  tenant fingerprint $FP"
for i in $(seq 1 $N); do
  start_bg ip netns exec "$(ns_of "$i")" "$QUID" serve --home "$S/host$i" --listen "$(addr_of "$i")" \
    --contribute 2G --tenant "$FP" >"$S/host$i.log" 2>&1
  HOST_PIDS+=("$BG_PID")
done
for i in $(seq 1 $N); do
  for n in $(seq 60); do
    ip netns exec "$(ns_of "$i")" ss -Hltn "sport = :$PORT" | grep -q . && break
    kill -0 "${HOST_PIDS[i - 1]}" 2>/dev/null || fail "host $i exited: $(tail -1 "$S/host$i.log")"
    sleep 0.25
  done
  ip netns exec "$(ns_of "$i")" ss -Hltn "sport = :$PORT" | grep -q . || fail "host $i does not listen on $(addr_of "$i") after 15 s"
done
peers=()
for i in $(seq 1 $N); do peers+=(--peer "$(addr_of "$i")"); done
"$QUID" init --home "$H" --data 4 --parity 2 "${peers[@]}" >"$S/init.log" 2>&1 \
  || fail "quid init --peer ... failed: $(tail -1 "$S/init.log")"
[ "$(grep -c '^pinned host' "$S/init.log")" = $N ] || fail "quid init did not pin $N hosts: $(tr '\n' ' ' <"$S/init.log")"
quid_mount
[ "$(store_states | grep -c ' true ')" = $N ] || fail "status does not show $N reachable stores: $(store_states | tr '\n' ';')"

check "1. write a tree, store it, verify it"
write_mixed_tree "$S/t1" 40
sums "$S/t1" "$S/t1.sums"
cp -a "$S/t1" "$M/t1"
sync
wait_settled 180
drop_caches
verify_sums "$M/t1" "$S/t1.sums" "all hosts connected"
shards_line() { store_states | awk '{printf "%s%s=%s%s", (NR > 1 ? " " : ""), NR, $3, ($2 == "true" ? "" : "(unreachable)")}'; }
it_log "  shards per host: $(shards_line)"

C=$(addr_of $CUT)
check "2. cut host $CUT ($C) off: its namespace-side link down"
drop_caches
ip -n "$(ns_of $CUT)" link set "$(ns_if $CUT)" down
T_CUT=$(now_ms)
( cd "$M/t1" && sha256sum --quiet -c "$S/t1.sums" ) >"$S/read2.out" 2>&1 &
READER=$!
IT_BG_PIDS+=("$READER")
( t=$(now_ms); stat -f "$M" >/dev/null 2>&1 || echo failed >"$S/statfs.err"; echo $(($(now_ms) - t)) >"$S/statfs.ms" ) &
STATFS=$!
IT_BG_PIDS+=("$STATFS")
if wait_store_reachable "$C" false 20 "2. host $CUT cut"; then
  it_log "  status shows host $CUT unreachable ${WAITED} s after the cut"
else
  soft_fail "2. status still shows host $CUT reachable 20 s after it was cut off"
fi
# The read: must finish (and verify) within 30 s of the cut; give it 180 s before calling it a hang.
for n in $(seq 720); do kill -0 "$READER" 2>/dev/null || break; sleep 0.25; done
if kill -0 "$READER" 2>/dev/null; then
  kill_bg "$READER"
  fail "2. a full read of the tree with host $CUT cut off still runs 180 s after the cut (a hang)"
fi
read_rc=0
wait "$READER" || read_rc=$?
read_ms=$(($(now_ms) - T_CUT))
it_log "  full read of the tree (no cache) with host $CUT cut: $read_ms ms, exit $read_rc"
[ "$read_rc" = 0 ] || soft_fail "2. reading the tree with host $CUT cut off: $(grep -c FAILED "$S/read2.out") files failed; first: $(grep FAILED "$S/read2.out" | head -1)"
[ "$read_ms" -le 30000 ] || soft_fail "2. a full read of the tree with host $CUT cut off took $read_ms ms (limit 30 s)"
wait "$STATFS" || true
statfs_ms=$(cat "$S/statfs.ms" 2>/dev/null || echo "?")
it_log "  statfs (df) of the mount, started at the cut: $statfs_ms ms$([ ! -e "$S/statfs.err" ] || echo ", FAILED")"
[ ! -e "$S/statfs.err" ] || soft_fail "2. statfs of the mount failed with host $CUT cut off"
if [ "$statfs_ms" = "?" ] || [ "$statfs_ms" -gt 5000 ]; then
  soft_fail "2. statfs (df) of the mount took $statfs_ms ms with host $CUT cut off (limit 5 s)"
fi
t0=$(now_ms)
drop_caches
verify_sums "$M/t1" "$S/t1.sums" "2. host $CUT cut, read again"
it_log "  second full read: $(($(now_ms) - t0)) ms"

check "3. with host $CUT cut off, write and sync a new batch: stored within 120 s, reads back exactly"
write_mixed_tree "$S/t2" 16 0
sums "$S/t2" "$S/t2.sums"
t0=$(now_ms)
cp -a "$S/t2" "$M/t2"
sync
sync_ms=$(($(now_ms) - t0))
wait_settled 120
it_log "  copy + sync $sync_ms ms; stored (0 bytes pending) after $(($(now_ms) - t0)) ms; shards per host: $(shards_line)"
drop_caches
verify_sums "$M/t2" "$S/t2.sums" "3. host $CUT cut, new batch"

check "4. link of host $CUT up again: reachable within 30 s, and new shards go to it"
count_files() { find "$S/host$CUT" -type f | wc -l; }
files_before=$(count_files)
ip -n "$(ns_of $CUT)" link set "$(ns_if $CUT)" up
if wait_store_reachable "$C" true 30 "4. host $CUT back"; then
  it_log "  status shows host $CUT reachable ${WAITED} s after the link came back"
else
  soft_fail "4. status does not show host $CUT reachable 30 s after its link came back"
fi
shards_before=$(store_state "$C" 3)
write_mixed_tree "$S/t3" 16 0
sums "$S/t3" "$S/t3.sums"
cp -a "$S/t3" "$M/t3"
sync
wait_settled 120
shards_after=$(store_state "$C" 3)
files_after=$(count_files)
it_log "  host $CUT: shards in status $shards_before -> $shards_after, files in its home $files_before -> $files_after; shards per host: $(shards_line)"
[ "$shards_after" -gt "$shards_before" ] || soft_fail "4. host $CUT got no new shards after its link came back (status shard count $shards_before -> $shards_after)"
[ "$files_after" -gt "$files_before" ] || soft_fail "4. no new files in host $CUT's home after its link came back ($files_before -> $files_after)"
drop_caches
verify_sums "$M/t1" "$S/t1.sums" "4. all connected, tree 1"
verify_sums "$M/t2" "$S/t2.sums" "4. all connected, batch written during the cut"
verify_sums "$M/t3" "$S/t3.sums" "4. all connected, batch written after"
# Chunks written during the cut doubled up on the other hosts; the volume spreads them onto
# the returned host by itself, within a bound.
if wait_no_degraded "$H" 60; then it_log "  redundancy restored: no degraded chunk"
else soft_fail "4. status still shows $DEGRADED degraded chunks 60 s after host $CUT came back"; fi

check "5. cut hosts $CUT2 and $CUT3 at once, then at once read the whole tree and write a new batch"
ip -n "$(ns_of $CUT2)" link set "$(ns_if $CUT2)" down
ip -n "$(ns_of $CUT3)" link set "$(ns_if $CUT3)" down
T_CUT=$(now_ms)
drop_caches
( cd "$M/t1" && sha256sum --quiet -c "$S/t1.sums" ) >"$S/read5.out" 2>&1 &
READER=$!
IT_BG_PIDS+=("$READER")
write_mixed_tree "$S/t4" 16 0
sums "$S/t4" "$S/t4.sums"
cp -a "$S/t4" "$M/t4"
sync
it_log "  new batch copied and synced $(($(now_ms) - T_CUT)) ms after the cut"
for n in $(seq 720); do kill -0 "$READER" 2>/dev/null || break; sleep 0.25; done
if kill -0 "$READER" 2>/dev/null; then
  kill_bg "$READER"
  fail "5. a full read of the tree with hosts $CUT2 and $CUT3 cut off still runs 180 s after the cut (a hang)"
fi
read_rc=0
wait "$READER" || read_rc=$?
read_ms=$(($(now_ms) - T_CUT))
it_log "  full read of the tree with hosts $CUT2 and $CUT3 cut: $read_ms ms, exit $read_rc"
[ "$read_rc" = 0 ] || soft_fail "5. reading the tree with hosts $CUT2 and $CUT3 cut off: $(grep -c FAILED "$S/read5.out") files failed; first: $(grep FAILED "$S/read5.out" | head -1)"
[ "$read_ms" -le 30000 ] || soft_fail "5. a full read of the tree with hosts $CUT2 and $CUT3 cut off took $read_ms ms (limit 30 s)"
wait_settled 120
it_log "  new batch stored (0 bytes pending) $(($(now_ms) - T_CUT)) ms after the cut; shards per host: $(shards_line)"
drop_caches
verify_sums "$M/t4" "$S/t4.sums" "5. hosts $CUT2 and $CUT3 cut, batch written at the cut"
verify_sums "$M/t2" "$S/t2.sums" "5. hosts $CUT2 and $CUT3 cut, batch written during the first cut"
ip -n "$(ns_of $CUT2)" link set "$(ns_if $CUT2)" up
ip -n "$(ns_of $CUT3)" link set "$(ns_if $CUT3)" up
for i in $CUT2 $CUT3; do
  if wait_store_reachable "$(addr_of "$i")" true 30 "5. host $i back"; then
    it_log "  status shows host $i reachable ${WAITED} s after its link came back"
  else
    soft_fail "5. status does not show host $i reachable 30 s after its link came back"
  fi
done
drop_caches
for t in t1 t2 t3 t4; do verify_sums "$M/$t" "$S/$t.sums" "5. all connected again, $t"; done

check "6. the tenant's TCP connections go only to $NET.0/24; quid umount exits 0"
peers_seen=$(ss -Htnp | awk -v p="pid=$DAEMON_PID," 'index($0, p) {print $5}' | sort -u | tr '\n' ' ')
it_log "  mount daemon's peers: ${peers_seen:-none}"
for a in $peers_seen; do
  case $a in "$NET".*) ;; *) soft_fail "6. the mount daemon talks to $a, outside $NET.0/24" ;; esac
done
quid_umount
it_done
