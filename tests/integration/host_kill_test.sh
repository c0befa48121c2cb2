#!/bin/bash
# Hosts killed with SIGKILL under `quid demo --nodes 7 --cache-size 0` (a 4+2 volume over six
# `quid serve` processes on loopback; every read goes to the hosts):
#  (a) 2 hosts killed while a full read of the tree runs: every file still verifies;
#  (b) with those 2 still dead, a new batch written and synced is stored (0 bytes pending) on the 4
#      live hosts and reads back exactly;
#  (c) the 2 restarted (their exact command lines, same home and port): status shows them
#      reachable again within 30 s and everything verifies; the volume moves the extra shards of
#      batch (b) onto them (no degraded chunk within 60 s); then 2 OTHER hosts killed: everything
#      must still verify, the batch of (b) included;
#  (d) `quid status --json` shows every store reachable again once all are back;
#  (e) 2 hosts killed in the middle of a 200 MB file copy: the copy and sync succeed, the file
#      verifies, and it is stored (0 bytes pending) on the live hosts.
# Finally SIGTERM stops the demo cleanly (exit 0, unmounted).
# Usage (as root): host_kill_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup host_kill "${1:-}"
snapshot_quid

W=$S/demo       # the demo's workdir: node1 (the volume), node2..node7 (hosts 1..6), ports
H=$W/node1     # the volume's home (status, wait_settled)

# all_sums LABEL: every tree written so far verifies through the mount, caches dropped first.
all_sums() {
  local label=$1 t
  drop_caches
  for t in "${TREES[@]}"; do verify_sums "$M/$t" "$S/$t.sums" "$label, $t"; done
}

shards_line() { store_states | awk '{printf "%s%s=%s%s", (NR > 1 ? " " : ""), NR, $3, ($2 == "true" ? "" : "(down)")}'; }

check "quid demo --nodes 7 --cache-size 0 mounts a volume over 6 hosts"
start_demo --cache-size 0
[ "$(wc -l <"$W/ports")" = 7 ] || fail "the demo's workdir has no list of 7 node ports"
for i in 1 2 3 4 5 6; do [ -n "$(host_pid "$i")" ] || fail "host $i of the demo is not running"; done
[ "$(store_states | grep -c ' true ')" = 6 ] || fail "status does not show 6 reachable stores: $(store_states | tr '\n' ';')"

TREES=()
check "write a tree (sizes 0 .. 13 MB, /usr/include/linux) and store it on all 6 hosts"
write_mixed_tree "$S/t1" 40
setfattr -n user.quid.test -v "host kill" "$S/t1/sub/f1"
sums "$S/t1" "$S/t1.sums"
cp -a "$S/t1" "$M/t1"
sync
TREES+=(t1)
wait_settled 180
compare_trees "$S/t1" "$M/t1" "written tree"
all_sums "all 6 hosts up"
it_log "  shards per host: $(shards_line)"

check "(a) SIGKILL hosts 1 and 2 0.3 s into a full read (no cache): every file verifies"
drop_caches
( cd "$M/t1" && sha256sum --quiet -c "$S/t1.sums" ) >"$S/read_a.out" 2>&1 &
READER=$!
IT_BG_PIDS+=("$READER")
sleep 0.3
kill -0 "$READER" 2>/dev/null && reading=yes || reading=no
t0=$(now_ms)
kill_host 1
kill_host 2
if wait "$READER"; then
  it_log "  the read finished $(( $(now_ms) - t0 )) ms after the kill (still reading at the kill: $reading)"
else
  soft_fail "(a) files differ or fail to read when hosts 1 and 2 were killed mid-read: $(grep -c FAILED "$S/read_a.out") failed; first: $(grep FAILED "$S/read_a.out" | head -1)"
fi
[ "$reading" = yes ] || soft_fail "(a) the read finished within 0.3 s, before the kill: nothing was read across it"
for i in 1 2; do
  if wait_store_reachable "$(addr_of "$i")" false 20 "(a) host $i killed"; then it_log "  status shows host $i unreachable after ${WAITED} s"
  else soft_fail "(a) status still shows killed host $i reachable 20 s after the kill"; fi
done
all_sums "(a) hosts 1 and 2 dead"

check "(b) with hosts 1 and 2 dead, write and sync a new batch: stored on the 4 live hosts, reads back exactly"
write_mixed_tree "$S/t2" 24 0
sums "$S/t2" "$S/t2.sums"
before_b=$(store_states | awk '{print $3}' | tr '\n' ' ')
t0=$(now_ms)
cp -a "$S/t2" "$M/t2"
sync
TREES+=(t2)
wait_settled 180
it_log "  written, synced and stored in $(( $(now_ms) - t0 )) ms; shards per host: $(shards_line)"
after_b=$(store_states | awk '{print $3}' | tr '\n' ' ')
all_sums "(b) hosts 1 and 2 dead"

check "(c) restart hosts 1 and 2 (same command line): reachable again within 30 s, everything verifies"
restart_host 1
restart_host 2
for i in 1 2; do
  if wait_store_reachable "$(addr_of "$i")" true 30 "(c) host $i restarted"; then it_log "  status shows host $i reachable after ${WAITED} s"
  else soft_fail "(c) status does not show restarted host $i reachable within 30 s"; fi
done
all_sums "(c) all 6 up again"
# Chunks of batch (b) hold two shards on some hosts; the volume moves the extras to the
# returned hosts by itself. Bounded: it must be done within 60 s.
check "(c) redundancy restored: status shows no degraded chunk within 60 s"
wait_no_degraded "$H" 60 || soft_fail "(c) status still shows $DEGRADED degraded chunks after 60 s"
it_log "  status: $(timeout 60 "$QUID" status --home "$H" --json | grep -o '"chunks[a-z_]*":[0-9]*' | tr '\n' ' ')"

# The two hosts (of 3..6) that took the most new shards in (b): the likeliest to hold two shards of
# one chunk if (b) placed 6 shards on 4 hosts. Any 2 of 6 must be expendable once redundancy is full.
read -r -a b0 <<<"$before_b"
read -r -a b1 <<<"$after_b"
others=$(for i in 3 4 5 6; do echo "$((b1[i - 1] - b0[i - 1])) $i"; done | sort -rn | head -2 | awk '{print $2}' | sort -n | tr '\n' ' ')
read -r x y <<<"$others"
check "(c) SIGKILL hosts $x and $y (they took $((b1[x - 1] - b0[x - 1])) and $((b1[y - 1] - b0[y - 1])) of the new shards in (b)): everything still verifies"
kill_host "$x"
kill_host "$y"
drop_caches
verify_sums "$M/t1" "$S/t1.sums" "(c) hosts $x, $y dead, tree written with all 6 up"
verify_sums "$M/t2" "$S/t2.sums" "(c) hosts $x, $y dead, batch (b) written while hosts 1, 2 were dead"
if [ "$VERIFY_OK" = 0 ]; then
  it_log "  FINDING: data written while 2 hosts were down is not re-placed with full redundancy when they return;"
  it_log "  shards per host now: $(shards_line); degraded chunks: $(status_field chunks_degraded)"
  it_log "  the demo's log says: $(grep -iE 'error|fail|unavailable|corrupt' "$S/demo.log" | tail -1)"
fi

check "(d) restart hosts $x and $y: quid status --json shows all 6 stores reachable"
restart_host "$x"
restart_host "$y"
for i in 1 2 3 4 5 6; do
  if wait_store_reachable "$(addr_of "$i")" true 30 "(d) host $i"; then it_log "  host $i reachable (${WAITED} s)"
  else soft_fail "(d) status does not show host $i reachable within 30 s of the restart"; fi
done
all_sums "(d) all 6 up"

check "(e) SIGKILL hosts 5 and 6 in the middle of a 200 MB file copy: copy, sync and read back succeed"
head -c $((200 * MiB)) /dev/urandom >"$S/big.src"
big_sum=$(sha256sum <"$S/big.src")
big_sum=${big_sum%% *}
wait_settled 120
cp "$S/big.src" "$M/big" &
COPIER=$!
IT_BG_PIDS+=("$COPIER")
for n in $(seq 200); do
  [ "$(stat -c %s "$M/big" 2>/dev/null || echo 0)" -ge $((60 * MiB)) ] && break
  kill -0 "$COPIER" 2>/dev/null || break
  sleep 0.05
done
copied=$(stat -c %s "$M/big" 2>/dev/null || echo 0)
kill -0 "$COPIER" 2>/dev/null && copying=yes || copying=no
kill_host 5
kill_host 6
it_log "  killed hosts 5 and 6 with $((copied / MiB)) MiB copied (copy still running: $copying); shards per host: $(shards_line)"
[ "$copying" = yes ] || soft_fail "(e) the copy ended before the kill: the kill did not hit a write"
wait "$COPIER" || fail "(e) cp of 200 MB failed after hosts 5 and 6 were killed mid-copy"
t0=$(now_ms)
sync "$M/big" || fail "(e) fsync of the copied file failed with hosts 5 and 6 dead"
sync || fail "(e) sync failed with hosts 5 and 6 dead"
it_log "  sync returned in $(( $(now_ms) - t0 )) ms"
wait_settled 240
it_log "  stored (0 bytes pending) $(( $(now_ms) - t0 )) ms after the sync; shards per host: $(shards_line)"
drop_caches
got=$(sha256sum <"$M/big") || fail "(e) reading the copied file failed"
if [ "${got%% *}" = "$big_sum" ]; then it_log "  the 200 MB file verifies with hosts 5 and 6 dead"
else soft_fail "(e) the 200 MB file copied while hosts 5 and 6 were killed reads back with other bytes"; fi
restart_host 5
restart_host 6
for i in 5 6; do
  wait_store_reachable "$(addr_of "$i")" true 30 "(e) host $i restarted" || soft_fail "(e) restarted host $i not reachable within 30 s"
done
drop_caches
got=$(sha256sum <"$M/big") || fail "(e) reading the copied file failed with all hosts back"
[ "${got%% *}" = "$big_sum" ] || soft_fail "(e) the 200 MB file reads back with other bytes once all hosts are back"
all_sums "(e) all 6 up at the end"

check "SIGTERM stops the demo within 60 s: exit 0, unmounted"
kill -TERM "$DEMO_PID"
rc=0
for n in $(seq 240); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.25; done
kill -0 "$DEMO_PID" 2>/dev/null && fail "quid demo still runs 60 s after SIGTERM"
wait "$DEMO_PID" || rc=$?
[ "$rc" = 0 ] || soft_fail "quid demo exited $rc after SIGTERM: $(tail -1 "$S/demo.log")"
! mountpoint -q "$M" || soft_fail "quid demo exited but $M is still mounted"

check "the demo again without the passphrase its volume was made with: refused, and says so"
rc=0
env -u QUID_PASSPHRASE timeout 30 "$QUID" demo --nodes 7 --workdir "$W" "$M" </dev/null >"$S/demo2.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || soft_fail "quid demo without the passphrase exited 0"
grep -q "QUID_PASSPHRASE" "$S/demo2.out" || soft_fail "quid demo without the passphrase: $(tail -1 "$S/demo2.out")"
[ ! -e "$W/passphrase" ] || soft_fail "quid demo without the passphrase wrote a new one to $W/passphrase"
it_done
