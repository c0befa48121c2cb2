#!/bin/bash
# Offline means usable: `quid demo --nodes 7 --cache-size 0 --journal-size 96M --journal-wait 5s`,
# a small file stored, then all six hosts killed with SIGKILL and 1.5 x the journal (144 MiB)
# written with O_DIRECT (each write is acknowledged, or refused, by the volume itself):
#  (a) every 2 s while the writer runs, a stat of the small file and a lookup of an absent name
#      answer within 2 s;
#  (b) the writer ends with ENOSPC within the journal wait plus a margin (30 s), instead of hanging,
#      and a second writer is refused at once; `quid status --json` says journal_full;
#  (c) the hosts restarted: everything acknowledged is stored (0 bytes pending) and reads back
#      exactly, the small file too; writes work again.
# Usage (as root): offline_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup offline "${1:-}"

W=$S/demo    # the demo's workdir: node1 (the volume), node2..node7 (hosts 1..6), ports
H=$W/node1  # the volume's home
JOURNAL_MIB=96
WRITE_MIB=$((JOURNAL_MIB * 3 / 2))
WAIT_S=5

check "quid demo with a ${JOURNAL_MIB} MiB journal and a ${WAIT_S} s journal wait mounts a volume over 6 hosts"
start_demo --cache-size 0 --journal-size ${JOURNAL_MIB}M --journal-wait ${WAIT_S}s
head -c 300000 /dev/urandom >"$S/small.src"
cp "$S/small.src" "$M/small"
sync
wait_settled 120

check "kill all 6 hosts, then write ${WRITE_MIB} MiB (1.5 x the journal) with O_DIRECT"
for i in 1 2 3 4 5 6; do kill_host "$i"; done
head -c $((WRITE_MIB * MiB)) /dev/urandom >"$S/big.src"
t_start=$(now_ms)
dd if="$S/big.src" of="$M/big" bs=1M oflag=direct conv=notrunc 2>"$S/dd.log" &
WRITER=$!
IT_BG_PIDS+=("$WRITER")

check "(a) while the writer runs, stat and lookup answer within 2 s, every 2 s"
probes=0
slowest=0
while kill -0 "$WRITER" 2>/dev/null; do
  t0=$(now_ms)
  timeout 2 stat -c %s "$M/small" >/dev/null || fail "(a) stat of another file did not answer within 2 s, $(((t0 - t_start) / 1000)) s into the write"
  rc=0
  timeout 2 stat "$M/absent.$probes" >/dev/null 2>&1 || rc=$?
  [ "$rc" != 124 ] || fail "(a) a lookup of an absent name did not answer within 2 s"
  took=$(($(now_ms) - t0))
  [ "$took" -gt "$slowest" ] && slowest=$took
  probes=$((probes + 1))
  [ $(($(now_ms) - t_start)) -lt $(((WAIT_S + 60) * 1000)) ] || fail "(b) the writer neither finished nor failed within $((WAIT_S + 60)) s"
  sleep 2
done
rc=0
wait "$WRITER" || rc=$?
took_s=$((($(now_ms) - t_start) / 1000))
it_log "  $probes probes, slowest ${slowest} ms; writer exit $rc after ${took_s} s: $(tail -1 "$S/dd.log")"
[ "$probes" -ge 2 ] || soft_fail "(a) the writer ended after $took_s s, before two probes ran"

check "(b) the writer got ENOSPC within the journal wait plus 30 s; a second writer is refused at once"
[ "$rc" != 0 ] || fail "(b) ${WRITE_MIB} MiB fit in a ${JOURNAL_MIB} MiB journal with every host dead"
grep -q "No space left on device" "$S/dd.log" || fail "(b) the writer failed, but not with ENOSPC: $(grep dd: "$S/dd.log" | tail -1)"
[ "$took_s" -le $((WAIT_S + 30)) ] || soft_fail "(b) the writer took $took_s s to get ENOSPC (journal wait $WAIT_S s)"
acked=$(grep -o '^[0-9]* bytes' "$S/dd.log" | tail -1 | cut -d' ' -f1)
[ -n "$acked" ] || fail "(b) cannot read how many bytes dd wrote: $(tail -2 "$S/dd.log")"
it_log "  acknowledged before ENOSPC: $((acked / MiB)) MiB"
[ "$acked" -ge $((JOURNAL_MIB / 2 * MiB)) ] || soft_fail "(b) only $((acked / MiB)) MiB fit in the ${JOURNAL_MIB} MiB journal"
[ "$(timeout 20 "$QUID" status --home "$H" --json | grep -o '"journal_full":[a-z]*' | cut -d: -f2)" = true ] \
  || soft_fail "(b) quid status --json does not say journal_full while writes are refused"
t0=$(now_ms)
rc2=0
# More than the room a refused 1 MiB write left, so it cannot simply fit.
dd if="$S/big.src" of="$M/second" bs=1M count=4 oflag=direct 2>"$S/dd2.log" || rc2=$?
[ "$rc2" != 0 ] || soft_fail "(b) a second writer succeeded while the journal was full"
[ $(($(now_ms) - t0)) -lt 2000 ] || soft_fail "(b) a second writer waited $(($(now_ms) - t0)) ms to be refused"

check "(c) restart the hosts: everything acknowledged is stored and reads back exactly"
for i in 1 2 3 4 5 6; do restart_host "$i"; done
t0=$(now_ms)
wait_settled 240
it_log "  stored (0 bytes pending) $(($(now_ms) - t0)) ms after the hosts came back"
# What was pending can all go to the first host back (doubled up), before the mount has
# seen the others return: until its probe does (every 2 s), a host it last saw down fails
# fast, and the small file needs four of its six.
for i in 1 2 3 4 5 6; do
  wait_store_reachable "$(addr_of "$i")" true 30 "(c) host $i" || fail "(c) host $i not reachable 30 s after its restart"
done
drop_caches
cmp -n "$acked" "$S/big.src" "$M/big" || fail "(c) the acknowledged ${acked} bytes do not read back exactly"
cmp "$S/small.src" "$M/small" || fail "(c) the small file written before the hosts died does not read back"
cp "$S/small.src" "$M/after"
sync
wait_settled 120
drop_caches
cmp "$S/small.src" "$M/after" || fail "(c) a file written after the hosts came back does not read back"
[ "$(timeout 20 "$QUID" status --home "$H" --json | grep -o '"journal_full":[a-z]*' | cut -d: -f2)" = false ] \
  || soft_fail "(c) quid status still says journal_full once everything is stored"

kill -TERM "$DEMO_PID"
rc=0
wait "$DEMO_PID" || rc=$?
[ "$rc" = 0 ] || soft_fail "quid demo exited $rc on SIGTERM"
it_done
