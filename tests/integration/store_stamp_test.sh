#!/bin/bash
# Stores belong to one volume (issue 12, finding 1), on the real binary:
#  (a) volume A on six store folders writes a 20 MiB file and unmounts; `quid init` of volume B
#      on the same six folders must be refused, in one line naming a store and another volume.
#      Were B created anyway (the bug), B is mounted with every shard file backdated two hours
#      (past the 10-minute cleanup grace) until its first sweep has run. Either way A's file
#      must read back exactly afterwards;
#  (b) a volume given one folder twice (the second time through a symlink) is refused;
#  (c) a host given twice under two addresses (127.0.0.1:P and localhost:P) is refused;
#  (d) `quid init` run again in a home whose volume is gone (the same node key, a new volume)
#      on the same host is refused, and the host still holds every shard of the first volume;
#  (e) the other init checks of the issue (finding 6): a chunk size whose shards pass the 16 MiB
#      frame limit is refused, and so are fewer stores than k+m unless --allow-degraded;
#  (f) one of A's stores made to carry another volume's stamp: A still mounts, `quid mount`
#      and `quid status` say that store belongs to another volume, A's file reads back (from
#      the other five) and nothing on that store is touched.
# Usage (as root): store_stamp_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup store_stamp "${1:-}"
snapshot_quid

stores=()
for i in 1 2 3 4 5 6; do stores+=(--store "$S/s$i"); done

# A sweep of volume $H has completed (cleanup_passes >= 1), within 60 s.
wait_swept() {
  local i passes
  for i in $(seq 240); do
    passes=$(status_field cleanup_passes)
    [ -n "$passes" ] && [ "$passes" -ge 1 ] && return 0
    sleep 0.25
  done
  fail "volume $H ran no cleanup pass within 60 s"
}

# refused LOG WORDS: the init whose output is LOG failed saying WORDS (an extended regex).
refused() {
  tail -1 "$1" | grep -Eq -- "$2" || fail "init refused, but not for the expected reason ($2): $(tail -1 "$1")"
}

check "(a) volume A on six folders, a 20 MiB file; volume B on the same folders must not harm it"
H=$S/a
"$QUID" init --home "$H" --data 4 --parity 2 "${stores[@]}" >"$S/init-a.log" 2>&1 \
  || fail "quid init of volume A failed: $(tail -1 "$S/init-a.log")"
quid_mount
head -c 20M /dev/urandom >"$S/f"
cp "$S/f" "$M/f"
sync
wait_settled
quid_umount
shards_a=$(find "$S"/s? -name '*.shard' | wc -l)
[ "$shards_a" -ge 30 ] || fail "volume A stored only $shards_a shards for 20 MiB"
if "$QUID" init --home "$S/b" --data 4 --parity 2 "${stores[@]}" >"$S/init-b.log" 2>&1; then
  soft_fail "quid init of volume B on volume A's six folders was accepted"
  find "$S"/s? -type f -exec touch -d '2 hours ago' {} + # as if A had written them two hours ago
  H=$S/b
  quid_mount
  wait_swept
  quid_umount
  H=$S/a
else
  refused "$S/init-b.log" "folder:$S/s[1-6] belongs to another volume"
  [ ! -e "$S/b/meta" ] || soft_fail "the refused init left a volume in $S/b"
  it_log "  refused: $(tail -1 "$S/init-b.log")"
fi
[ "$(find "$S"/s? -name '*.shard' | wc -l)" = "$shards_a" ] \
  || soft_fail "volume A's stores hold $(find "$S"/s? -name '*.shard' | wc -l) shards, not $shards_a"
quid_mount
drop_caches
cmp -s "$S/f" "$M/f" || soft_fail "volume A's 20 MiB file no longer reads back"
quid_umount

check "(b) the same folder twice (once through a symlink) is refused"
mkdir -p "$S/d1"
ln -s "$S/d1" "$S/d1-link"
if "$QUID" init --home "$S/c" --data 4 --parity 2 --store "$S/d1" --store "$S/d1-link" \
  $(for i in 2 3 4 5; do echo --store "$S/d$i"; done) >"$S/init-c.log" 2>&1; then
  soft_fail "a volume given the same folder twice was accepted"
else
  refused "$S/init-c.log" "are the same folder"
  it_log "  refused: $(tail -1 "$S/init-c.log")"
fi

check "(c) the same host under two addresses is refused; (d) a new volume in the same home too"
T=$S/t
FP=$(node_fingerprint "$T")
FP2=$(node_fingerprint "$S/t2")
for n in $(seq 50); do # a free loopback port
  PORT=$(((RANDOM % 20000) + 30000))
  ss -Hltn "sport = :$PORT" | grep -q . || break
done
start_bg "$QUID" serve --home "$S/host" --listen "127.0.0.1:$PORT" --contribute 1G --tenant "$FP" \
  --tenant "$FP2" >"$S/host.log" 2>&1
for n in $(seq 60); do
  ss -Hltn "sport = :$PORT" | grep -q . && break
  kill -0 "$BG_PID" 2>/dev/null || fail "the host exited: $(tail -1 "$S/host.log")"
  sleep 0.25
done
ss -Hltn "sport = :$PORT" | grep -q . || fail "the host does not listen on port $PORT after 15 s"
if "$QUID" init --home "$S/t2" --data 1 --parity 1 --peer "127.0.0.1:$PORT" --peer "localhost:$PORT" \
  >"$S/init-t2.log" 2>&1; then
  soft_fail "a volume given one host under two addresses was accepted"
else
  refused "$S/init-t2.log" "127.0.0.1:$PORT and localhost:$PORT are the same host"
  it_log "  refused: $(tail -1 "$S/init-t2.log")"
fi

H=$T
"$QUID" init --home "$H" --data 1 --parity 0 --peer "127.0.0.1:$PORT" >"$S/init-t.log" 2>&1 \
  || fail "quid init of a volume on the host failed: $(tail -1 "$S/init-t.log")"
quid_mount
head -c 3M /dev/urandom >"$M/g"
sync
wait_settled
quid_umount
held=$(find "$S/host" -name '*.shard' | wc -l)
[ "$held" -ge 1 ] || fail "the host holds no shard of the first volume"
rm -rf "$H/meta" "$H/journal" # the volume is gone; node.key stays: the same tenant to the host
if "$QUID" init --home "$H" --data 1 --parity 0 --peer "127.0.0.1:$PORT" >"$S/init-t-again.log" 2>&1; then
  soft_fail "a second volume of the same node was accepted on the host's area of the first"
  find "$S/host" -type f -exec touch -d '2 hours ago' {} +
  quid_mount
  wait_swept
  quid_umount
else
  refused "$S/init-t-again.log" "host:127.0.0.1:$PORT belongs to another volume"
  it_log "  refused: $(tail -1 "$S/init-t-again.log")"
fi
[ "$(find "$S/host" -name '*.shard' | wc -l)" = "$held" ] \
  || soft_fail "the host holds $(find "$S/host" -name '*.shard' | wc -l) shards of the first volume, not $held"

check "(e) --chunk-size 64M at --data 4 is refused; five stores for 4+2 only with --allow-degraded"
five=()
for i in 1 2 3 4 5; do five+=(--store "$S/e$i"); done
if "$QUID" init --home "$S/e" --data 4 --parity 2 --chunk-size 64M "${stores[@]}" >"$S/init-e1.log" 2>&1; then
  soft_fail "--chunk-size 64M at --data 4 (shards over the frame limit) was accepted"
  rm -rf "$S/e"
else
  refused "$S/init-e1.log" "more than the 16777216 bytes a host takes"
  it_log "  refused: $(tail -1 "$S/init-e1.log")"
fi
if "$QUID" init --home "$S/e" --data 4 --parity 2 "${five[@]}" >"$S/init-e2.log" 2>&1; then
  soft_fail "five stores for 4+2 coding were accepted without --allow-degraded"
  rm -rf "$S/e"
else
  refused "$S/init-e2.log" "--allow-degraded"
  it_log "  refused: $(tail -1 "$S/init-e2.log")"
fi
"$QUID" init --home "$S/e" --data 4 --parity 2 --allow-degraded "${five[@]}" >"$S/init-e3.log" 2>&1 \
  || soft_fail "five stores with --allow-degraded were refused: $(tail -1 "$S/init-e3.log")"

check "(f) a store of A stamped by another volume: A mounts without it and says why"
cp "$S/e1/VOLUME" "$S/s6/VOLUME"
on_s6=$(find "$S/s6" -name '*.shard' | wc -l)
H=$S/a
quid_mount
grep -q "s6 belongs to another volume" "$S/mount.out" \
  || soft_fail "quid mount did not warn that s6 belongs to another volume: $(tail -2 "$S/mount.out" | tr '\n' ' ')"
"$QUID" status --home "$H" >"$S/status.out" 2>&1 || soft_fail "quid status failed: $(tail -1 "$S/status.out")"
grep -q "^  folder:$S/s6 belongs to another volume" "$S/status.out" \
  || soft_fail "quid status does not say why s6 is down: $(tr '\n' ' ' <"$S/status.out")"
drop_caches
cmp -s "$S/f" "$M/f" || soft_fail "volume A's file does not read back without its sixth store"
wait_swept
quid_umount
[ "$(find "$S/s6" -name '*.shard' | wc -l)" = "$on_s6" ] || soft_fail "volume A touched the shards on a store it does not own"
it_done
