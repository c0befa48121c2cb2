#!/bin/bash
# The exchange on loopback: seven real node daemons (quid serve) paired only by invitations
# and one pair by `quid trust`, node 1's 4+2 volume on its leases, mounted.
#  (a) refused codes: mistyped, truncated, expired, reused, and forged (a well-formed code with
#      node 1's key and address but a secret it never issued) fail with one line and a
#      non-zero exit; nothing changes on either node; the genuine code works afterwards;
#  (b) node 1 has 6 given and 6 received active leases of equal capacity, its partners one each
#      way; `quid trust` run on both sides pairs nodes 2 and 3;
#  (c) a tree written into node 1's volume (on its leases) compares byte for byte;
#  (d) node 1's daemon killed with SIGKILL: its mount reads on (it takes no data through it);
#      then every node daemon killed and restarted: peers and leases are exactly as before and
#      the mount reads everything;
#  (e) an eighth node joins node 1 while the volume is mounted: the volume grows onto the new
#      lease without a remount (its store list and statfs grow) and new files put shards there;
#  (f) node 5 restarted on another port tells node 1 at its next heartbeat: node 1's mount
#      reaches it there, and reads that need its shards succeed (before the volume fills: a
#      chunk written onto full hosts may double up, and two stopped hosts may then cost it);
#  (g) writing past the volume's usable capacity (7 x 48 MiB x 4/6 = 224 MiB) fails with ENOSPC
#      near it, and every file written before compares equal.
# Usage (as root): exchange_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup exchange "${1:-}"

FLAGS=(--contribute 1G --heartbeat 1s --lease-term 10m --notice 20s --grace 20s)
CAP=48M
CAP_BYTES=$((48 * MiB))
H=$S/n1  # node 1's home holds the volume

active() { leases "$1" | awk -v d="$2" -v c="$CAP_BYTES" '$1 == d && $2 == "active" && $4 == c' | wc -l; }
refused() {  # refused WHAT NODE CODE EXPECTED-WORDS
  local what=$1 node=$2 code=$3 words=$4
  ! join "$node" "$code" || fail "(a) a $what code was accepted: $(cat "$S/join.out")"
  [ "$(wc -l <"$S/join.out")" = 1 ] || fail "(a) a $what code was refused in more than one line: $(cat "$S/join.out")"
  grep -q "$words" "$S/join.out" || fail "(a) a $what code was refused, but not saying '$words': $(cat "$S/join.out")"
  it_log "  $what: $(cat "$S/join.out")"
}
# forge CODE: the same code with one byte of its secret changed and the checksum made right
# again, as someone who read the format would make it.
forge() {
  python3 - "$1" <<'PY'
import hashlib, sys
alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
body = sys.argv[1][len("quid-"):]
bits = "".join(format(alphabet.index(c), "05b") for c in body)
data = bytearray(int(bits[i:i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8))
check = lambda b: hashlib.blake2b(bytes(b), digest_size=16).digest()[:4]
assert check(data[:-4]) == bytes(data[-4:]), "the checksum is not what this test expects"
data[1 + 16] ^= 0x5a          # version, fingerprint, then the secret
data[-4:] = check(data[:-4])
bits = "".join(format(b, "08b") for b in data)
bits += "0" * (-len(bits) % 5)
print("quid-" + "".join(alphabet[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5)))
PY
}

check "seven node daemons on loopback"
for i in 1 2 3 4 5 6 7; do serve "$i"; done

check "(a) mistyped, truncated, expired, forged and reused codes are refused and change nothing"
code=$(invite 1 "$CAP")
[ -n "$code" ] || fail "quid invite gave no code: $(tail -1 "$S/invite.log")"
it_log "  code (${#code} characters): $code"
[ "${#code}" -le 120 ] || fail "(a) the code has ${#code} characters, more than 120"
mid=$((${#code} / 2))
c=${code:$mid:1}
[ "$c" = a ] && r=b || r=a
refused mistyped 2 "${code:0:$mid}$r${code:$((mid + 1))}" "mistyped"
refused truncated 2 "${code:0:$((${#code} - 3))}" "mistyped or incomplete"
refused forged 2 "$(forge "$code")" "no such invitation"
short=$(invite 1 "$CAP" --expires 1s)
sleep 2
refused expired 2 "$short" "expired"
[ -z "$(leases 1)" ] && [ -z "$(leases 2)" ] || fail "(a) refused codes left leases behind: $(leases 1) / $(leases 2)"
join 2 "$code" || fail "(a) the genuine code was refused after the failed attempts: $(cat "$S/join.out")"
refused reused 3 "$code" "already used"
[ -z "$(leases 3)" ] || fail "(a) a refused code gave node 3 leases: $(leases 3)"

check "(b) node 1 invites nodes 3..7; nodes 2 and 3 pair by quid trust"
for i in 3 4 5 6 7; do
  c=$(invite 1 "$CAP")
  join "$i" "$c" || fail "(b) node $i could not join node 1: $(cat "$S/join.out")"
done
"$QUID" trust --home "$S/n2" "$(fp 3)" --address "127.0.0.1:${PORT[3]}" --capacity 16M >"$S/trust.out" 2>&1 \
  || fail "(b) quid trust on node 2 failed: $(cat "$S/trust.out")"
grep -q "completes when" "$S/trust.out" || fail "(b) node 2 paired before node 3 trusted it: $(cat "$S/trust.out")"
"$QUID" trust --home "$S/n3" "$(fp 2)" --address "127.0.0.1:${PORT[2]}" --capacity 16M >"$S/trust.out" 2>&1 \
  || fail "(b) quid trust on node 3 failed: $(cat "$S/trust.out")"
for i in $(seq 30); do [ "$(active 1 given)$(active 1 received)" = 66 ] && break; sleep 0.5; done
[ "$(active 1 given)$(active 1 received)" = 66 ] || fail "(b) node 1 has $(active 1 given) given and $(active 1 received) received active leases: $(leases 1)"
for i in 2 3 4 5 6 7; do
  [ "$(active "$i" given)$(active "$i" received)" = 11 ] || fail "(b) node $i does not hold one active 48 MiB lease each way with node 1: $(leases "$i")"
done
leases 2 | grep -q "given active $(fp 3) $((16 * MiB))" || fail "(b) quid trust did not pair nodes 2 and 3: $(leases 2)"
leases 3 | grep -q "received active $(fp 2) $((16 * MiB))" || fail "(b) node 3 holds no lease from node 2: $(leases 3)"
"$QUID" peers --home "$S/n1" --json | python3 -c 'import json, sys
ps = json.loads(sys.stdin.readline())["peers"]
assert len(ps) == 6 and all(p["online"] for p in ps), ps' || fail "(b) quid peers on node 1 does not show 6 partners online"

check "(c) a 4+2 volume on node 1's leases, mounted; a tree round-trips"
"$QUID" init --home "$H" --data 4 --parity 2 >"$S/init.log" 2>&1 || fail "quid init on node 1's leases failed: $(tail -1 "$S/init.log")"
grep -q "6 partner" "$S/init.log" || fail "(c) quid init did not place the volume on 6 partners: $(cat "$S/init.log")"
quid_mount
write_mixed_tree "$S/ref" 16
sums "$S/ref" "$S/ref.sums"
cp -a "$S/ref/." "$M/"
sync
wait_settled 120
drop_caches
verify_sums "$M" "$S/ref.sums" "(c) right after writing"

check "(d) node 1's daemon killed: the mount reads; every node restarted: peers and leases as before"
for i in 1 2 3 4 5 6 7; do leases "$i" >"$S/leases$i.before"; done
"$QUID" peers --home "$S/n1" --json | python3 -c 'import json, sys
print(sorted((p["peer"], p["addresses"][0]) for p in json.loads(sys.stdin.readline())["peers"]))' >"$S/peers1.before"
# Node 1's own daemon hosts none of its volume's shards: without it the mount reads on.
kill -9 "${NODE_PID[1]}"
drop_caches
verify_sums "$M" "$S/ref.sums" "(d) with node 1's daemon dead"
for i in 2 3 4 5 6 7; do kill -9 "${NODE_PID[$i]}"; done
sleep 0.5
for i in 1 2 3 4 5 6 7; do serve "$i"; done
for i in 1 2 3 4 5 6 7; do
  leases "$i" >"$S/leases$i.after"
  diff "$S/leases$i.before" "$S/leases$i.after" >/dev/null || fail "(d) node $i's leases changed across the restart: $(diff "$S/leases$i.before" "$S/leases$i.after" | head -3)"
done
"$QUID" peers --home "$S/n1" --json | python3 -c 'import json, sys
print(sorted((p["peer"], p["addresses"][0]) for p in json.loads(sys.stdin.readline())["peers"]))' >"$S/peers1.after"
diff "$S/peers1.before" "$S/peers1.after" >/dev/null || fail "(d) node 1's peers changed across the restart"
# The mount's breakers for the six hosts opened while they were dead; reads fail fast until a
# probe finds each host back (probes run every 2 s), so wait for that before reading.
for i in 2 3 4 5 6 7; do
  wait_store_reachable "127.0.0.1:${PORT[$i]}" true 15 "(d) node $i after the restart" \
    || fail "(d) node $i's host is not reachable from the mount 15 s after its restart"
done
drop_caches
verify_sums "$M" "$S/ref.sums" "(d) after the restart"

check "(e) an eighth node joins node 1 while it is mounted: the volume grows onto the new lease"
df_before=$(df -B1 --output=size "$M" | tail -1)
serve 8
c=$(invite 1 "$CAP")
join 8 "$c" || fail "(e) node 8 could not join node 1: $(cat "$S/join.out")"
stores_now() { "$QUID" status --home "$H" --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["stores"]))'; }
for i in $(seq 60); do [ "$(stores_now)" = 7 ] && break; sleep 0.5; done
[ "$(stores_now)" = 7 ] || fail "(e) the mounted volume has $(stores_now) stores 30 s after node 8 joined, not 7"
df_after=$(df -B1 --output=size "$M" | tail -1)
[ "$df_after" -gt "$df_before" ] || fail "(e) statfs did not grow with the new lease ($df_before -> $df_after bytes)"
it_log "  statfs $((df_before / MiB)) -> $((df_after / MiB)) MiB"
head -c $((8 * MiB)) /dev/urandom >"$S/grown.bin"
cp "$S/grown.bin" "$M/grown.bin"
sync
wait_settled 120
[ "$(store_state "127.0.0.1:${PORT[8]}" 3)" -gt 0 ] || fail "(e) no shard of a file written after the join is on node 8: $(store_states)"
echo "$(sha256sum <"$S/grown.bin" | cut -d' ' -f1)  grown.bin" >>"$S/ref.sums"

check "(f) node 5 restarted on another port: node 1 reaches it there within a few heartbeats"
old_port=${PORT[5]}
kill -9 "${NODE_PID[5]}"
PORT[5]=""
serve 5
[ "${PORT[5]}" != "$old_port" ] || fail "(f) node 5 came back on its old port"
t0=$(now_ms)
WAITED=""
wait_store_reachable "127.0.0.1:${PORT[5]}" true 20 "(f) node 5 at its new port" \
  || fail "(f) node 1's mount does not reach node 5 at 127.0.0.1:${PORT[5]} 20 s after it moved: $(store_states)"
it_log "  node 1's mount reached node 5 at its new port after $(($(now_ms) - t0)) ms"
"$QUID" peers --home "$S/n1" --json | grep -q "127.0.0.1:${PORT[5]}" || fail "(f) node 1's peers do not show node 5's new address"
# every chunk has a shard on node 5 or not; with nodes 6 and 7 stopped, reads need node 5's shards
kill -9 "${NODE_PID[6]}" "${NODE_PID[7]}"
drop_caches
verify_sums "$M" "$S/ref.sums" "(f) with node 5 moved and nodes 6, 7 stopped"
# back, and reached again, before the volume is filled
serve 6
serve 7
for i in 6 7; do
  wait_store_reachable "127.0.0.1:${PORT[$i]}" true 15 "(f) node $i back" \
    || fail "(f) node 1's mount does not reach node $i again 15 s after its restart"
done

check "(g) writing past the 224 MiB usable capacity gets ENOSPC near it; earlier files stay"
tree_bytes=$(du -sb "$S/ref" | cut -f1)
python3 - "$M" "$S/ref.sums" $((3 * 224 * MiB)) >"$S/fill.out" <<'PY'
import errno, hashlib, os, sys
mnt, sums, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(os.path.join(mnt, "fill"), exist_ok=True)
total = n = err = 0
while total < limit and not err:
    data, name = os.urandom(8 << 20), "fill/f%d" % n
    try:
        fd = os.open(os.path.join(mnt, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        view = memoryview(data)
        while view:
            k = os.write(fd, view[:1 << 20]); total += k; view = view[k:]
        os.fsync(fd); os.close(fd)
    except OSError as e:
        err = e.errno; break
    with open(sums, "a") as out: out.write("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name))
    n += 1
print(errno.errorcode.get(err, err) if err else "none", total, n)
PY
read -r en filled nfiles <"$S/fill.out"
mib=$(((tree_bytes + filled) / MiB))
it_log "  $en after $mib MiB in all ($nfiles files of 8 MiB)"
[ "$en" = ENOSPC ] || fail "(g) writing past the leases ended with '$en', not ENOSPC, after $mib MiB"
[ "$mib" -ge 112 ] && [ "$mib" -le 336 ] || fail "(g) ENOSPC after $mib MiB: not near the 224 MiB usable"
# the file whose write failed is not among the sums
drop_caches
verify_sums "$M" "$S/ref.sums" "(g) after ENOSPC"

quid_umount
it_done
