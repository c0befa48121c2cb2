#!/bin/bash
# A 4+2 volume over 6 store folders, no read cache, every read from the stores:
#  1. corrupted shards (a flipped byte at offset 4096 in every shard of one store, a random byte in
#     about half the shards of another) -> every file still reads back exactly;
#  2. (from a pristine copy again) the contents of 2 random stores deleted -> still exact;
#  3. a 3rd store deleted -> files with data there fail with EIO (cat fails, dd reports an I/O
#     error), at least one does, and every file that does read has its exact bytes.
# Usage (as root): store_loss_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup store_loss "${1:-}"

R=$S/ref
mkdir -p "$R/sizes" "$R/deep"
for n in 0 1 4095 4096 4097 65536 $((1 * MiB)) $((4 * MiB - 1)) $((4 * MiB)) $((4 * MiB + 1)) 13000000 $((20 * MiB + 12345)); do
  head -c "$n" /dev/urandom >"$R/sizes/f$n"
done
for i in $(seq 1 20); do head -c $((RANDOM * 31 + i)) /dev/urandom >"$R/sizes/r$i"; done
cp -a /usr/include/linux "$R/deep/"
sums "$R" "$S/sums"
nfiles=$(wc -l <"$S/sums")

# verify_exact LABEL: every file in the mount has its exact bytes (caches dropped first).
verify_exact() {
  drop_caches
  check "$1: all $nfiles files read back exactly"
  (cd "$M" && sha256sum --quiet -c "$S/sums") >"$S/verify.out" 2>&1 \
    || fail "$1: $(grep -c -v ': OK$' "$S/verify.out") files differ or fail to read; first: $(head -1 "$S/verify.out")"
}
# shards_of STORE: the shard files in one store folder.
shards_of() { find "$1" -type f -name '*.shard'; }
restore_pristine() {
  rm -rf "$H" "${STORE_DIRS[@]}"
  cp -a "$S/pristine/." "$S/"
}

quid_init 6 4 2
quid_mount
check "write $nfiles files (cp -a), fsync, read back"
cp -a "$R/." "$M/"
sync "$M"
verify_exact "right after writing"
quid_umount
total=0
for d in "${STORE_DIRS[@]}"; do total=$((total + $(shards_of "$d" | wc -l))); done
[ "$total" -gt 0 ] || fail "no *.shard files in the store folders after quid umount"
it_log "$total shard files in 6 stores"
mkdir "$S/pristine"
cp -a "$H" "${STORE_DIRS[@]}" "$S/pristine/"

# 1. corruption in two stores
mapfile -t pick < <(shuf -e 1 2 3 4 5 6)
a=${STORE_DIRS[$((pick[0] - 1))]} b=${STORE_DIRS[$((pick[1] - 1))]}
na=0 nb=0
while read -r f; do
  size=$(stat -c %s "$f")
  off=4096
  [ "$size" -gt 4096 ] || off=$((size - 1)) # a shard this small: its last byte
  flip_byte "$f" "$off"
  na=$((na + 1))
done < <(shards_of "$a")
while read -r f; do
  [ $((RANDOM % 2)) = 0 ] || continue
  size=$(stat -c %s "$f")
  flip_byte "$f" $(((RANDOM * 32768 + RANDOM) % size))
  nb=$((nb + 1))
done < <(shards_of "$b")
it_log "corrupted: one byte at offset 4096 in all $na shards of $(basename "$a"), a random byte in $nb shards of $(basename "$b")"
quid_mount
verify_exact "with 2 stores corrupted"
check "quid status counts the degraded reads"
dr=$(status_field degraded_reads)
[ "${dr:-0}" -gt 0 ] || soft_fail "all reads went through corrupted shards, yet quid status shows degraded_reads=${dr:-none}"
quid_umount

# 2. two stores lost
restore_pristine
lost=("${STORE_DIRS[$((pick[2] - 1))]}" "${STORE_DIRS[$((pick[3] - 1))]}")
it_log "deleting the contents of $(basename "${lost[0]}") and $(basename "${lost[1]}")"
find "${lost[@]}" -mindepth 1 -delete
quid_mount
verify_exact "with 2 of 6 stores lost"
quid_umount

# 3. a third store lost
third=${STORE_DIRS[$((pick[4] - 1))]}
it_log "deleting the contents of a third store, $(basename "$third")"
find "$third" -mindepth 1 -delete
quid_mount
drop_caches
check "with 3 of 6 stores lost: no wrong bytes, unreadable files fail with EIO"
ok=0 eio=0
while read -r sum f; do
  if got=$(sha256sum <"$M/$f" 2>"$S/err"); then
    [ "${got%% *}" = "$sum" ] || fail "with 3 stores lost, $f read back WRONG bytes (no error)"
    ok=$((ok + 1))
    continue
  fi
  eio=$((eio + 1))
  grep -q 'Input/output error' "$S/err" || fail "reading $f failed, but not with EIO: $(head -1 "$S/err")"
  if [ "$eio" -le 5 ]; then # the same through cat and dd
    if cat "$M/$f" >/dev/null 2>"$S/err"; then fail "cat $f succeeded where sha256sum failed"; fi
    dd if="$M/$f" of=/dev/null bs=1M 2>"$S/err" && fail "dd if=$f succeeded where sha256sum failed"
    grep -q 'Input/output error' "$S/err" || fail "dd of $f did not report an I/O error: $(head -1 "$S/err")"
  fi
done <"$S/sums"
[ "$eio" -gt 0 ] || fail "after losing 3 of 6 stores every file still read back: reads are not coming from the stores"
it_log "  $ok files intact (inline or unaffected), $eio failed with EIO, none wrong"
check "the mount still answers after the failed reads, and quid umount exits 0"
{ mountpoint -q "$M" && stat "$M/sizes" >/dev/null; } || fail "the mount stopped answering after the failed reads"
quid_umount
it_done
