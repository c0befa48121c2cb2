#!/bin/bash
# A real mount of a 4+2 volume over 6 store folders, no read cache: a reference tree (odd sizes
# around the 4 KiB inline limit and the 4 MiB chunk size, 100 MiB of random data, /usr/include,
# hard links, symlinks, xattrs, odd modes and owners, a FIFO, a sparse 1 GiB file, old mtimes)
# copied in with cp -a reads back identical in content and metadata; POSIX semantics through the
# mount (rename over a file, moving directories, link counts, chmod/chown/truncate, xattrs,
# O_APPEND) give the same tree as on tmpfs; and all of it survives quid umount + remount.
# Usage (as root): mount_tree_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup mount_tree "${1:-}"

R=$S/ref
OLD='2001-02-03 04:05:06'

build_reference() {
  local n
  mkdir -p "$R/sizes" "$R/links" "$R/modes" "$R/owners" "$R/special" "$R/xattrs" "$R/times" "$R/sparse" "$R/ops"
  for n in 0 1 4095 4096 4097 $((4 * MiB - 1)) $((4 * MiB)) $((4 * MiB + 1)) $((100 * MiB)); do
    head -c "$n" /dev/urandom >"$R/sizes/f$n"
  done
  # 8 MiB of zeros: all-zero chunks (holes, or dedup) must read back as zeros
  head -c $((8 * MiB)) /dev/zero >"$R/sizes/zeros8M"
  cp -a /usr/include "$R/include"

  echo "hard link target" >"$R/links/target"
  ln "$R/links/target" "$R/links/hard1"
  ln "$R/links/target" "$R/sizes/hard-elsewhere"
  ln "$R/sizes/f$((4 * MiB + 1))" "$R/links/big-hard"
  ln -s target "$R/links/rel"
  ln -s ../sizes/f1 "$R/links/rel-up"
  ln -s ../include "$R/links/dir-link"
  ln -s /usr/include/stdio.h "$R/links/abs"
  ln -s does/not/exist "$R/links/dangling"
  ln -s "$(printf 'x%.0s' $(seq 300))" "$R/links/long-target"

  echo secret >"$R/modes/m0600" && chmod 0600 "$R/modes/m0600"
  printf '#!/bin/sh\necho hi\n' >"$R/modes/m0755" && chmod 0755 "$R/modes/m0755"
  cp "$R/modes/m0755" "$R/modes/m4755" && chmod 4755 "$R/modes/m4755"
  cp "$R/modes/m0755" "$R/modes/m2755" && chmod 2755 "$R/modes/m2755"
  echo none >"$R/modes/m0000" && chmod 0000 "$R/modes/m0000"
  echo ro >"$R/modes/m0444" && chmod 0444 "$R/modes/m0444"
  mkdir "$R/modes/sticky" && chmod 1777 "$R/modes/sticky"
  mkdir "$R/modes/private" && chmod 0700 "$R/modes/private"

  echo owned >"$R/owners/file" && chown 1234:5678 "$R/owners/file"
  mkdir "$R/owners/dir" && chown 4321:4321 "$R/owners/dir"
  ln -s file "$R/owners/link" && chown -h 1111:2222 "$R/owners/link"
  cp "$R/modes/m0755" "$R/owners/setuid-other" && chown 2000:2000 "$R/owners/setuid-other" \
    && chmod 4750 "$R/owners/setuid-other"

  mkfifo -m 0640 "$R/special/fifo"

  echo data >"$R/xattrs/file"
  setfattr -n user.a -v hello "$R/xattrs/file"
  setfattr -n user.empty -v "" "$R/xattrs/file"
  setfattr -n user.binary -v 0x00ff10ee7f80 "$R/xattrs/file"
  setfattr -n user.big -v "$(head -c 3000 /dev/urandom | base64 -w0)" "$R/xattrs/file"
  setfattr -n user.to-remove -v bye "$R/xattrs/file"
  mkdir "$R/xattrs/dir" && setfattr -n user.on-dir -v yes "$R/xattrs/dir"
  head -c $((5 * MiB)) /dev/urandom >"$R/xattrs/big-with-xattr" && setfattr -n user.x -v 1 "$R/xattrs/big-with-xattr"

  echo old >"$R/times/old"
  echo older >"$R/times/pre-epoch"
  echo future >"$R/times/future"
  ln -s old "$R/times/old-link"
  mkdir "$R/times/old-dir"
  echo in >"$R/times/old-dir/in"
  touch -d "$OLD" "$R/times/old" "$R/times/old-dir/in"
  touch -d '1969-12-31 12:00:00 UTC' "$R/times/pre-epoch"
  touch -d '2100-01-01 00:00:00 UTC' "$R/times/future"
  touch -h -d "$OLD" "$R/times/old-link"
  touch -d "$OLD" "$R/times/old-dir"

  truncate -s 1G "$R/sparse/sparse.img"
  dd if=/dev/urandom of="$R/sparse/sparse.img" bs=4096 count=1 seek=$((512 * MiB / 4096)) conv=notrunc status=none

  echo "same bytes on both sides" >"$S/patch"
  # directories last: creating entries changed their mtimes
  touch -d "$OLD" "$R"/*/
}

# The same operations on the reference (tmpfs) and on the mount; every assertion must hold on both.
T0=0
semantics() {
  local d=$1 where=$2
  want() { [ "$1" = "$2" ] || fail "$where: $3: expected '$2', got '$1'"; }
  nlink() { stat -c %h "$1"; }
  mtime() { stat -c %Y "$1"; }

  check "$where: rename over an existing file"
  echo old-content >"$d/ops/a"
  echo new-content >"$d/ops/b"
  mv -f "$d/ops/b" "$d/ops/a"
  want "$(cat "$d/ops/a")" new-content "content after mv b over a"
  [ ! -e "$d/ops/b" ] || fail "$where: ops/b still exists after being renamed over ops/a"
  # ...over one name of a hard-linked file: the other names keep the old content, nlink drops
  echo replacement >"$d/ops/c"
  mv -f "$d/ops/c" "$d/links/hard1"
  want "$(nlink "$d/links/target")" 2 "nlink of links/target after hard1 was renamed over"
  want "$(cat "$d/links/target")" "hard link target" "links/target after hard1 was replaced"
  want "$(cat "$d/links/hard1")" replacement "links/hard1 after rename over it"

  check "$where: mv of directories (same parent, other parent, over an empty directory)"
  mv "$d/include/linux" "$d/ops/linux-moved"
  mv "$d/ops/linux-moved" "$d/ops/linux"
  [ -f "$d/ops/linux/fs.h" ] || fail "$where: ops/linux/fs.h missing after moving the directory"
  [ "$(mtime "$d/include")" -ge "$T0" ] || fail "$where: include/ mtime not updated by moving a child out"
  mkdir "$d/ops/empty-target"
  mv -T "$d/include/asm-generic" "$d/ops/empty-target"
  [ -f "$d/ops/empty-target/errno.h" ] || fail "$where: a directory renamed over an empty one lost its files"
  [ ! -e "$d/include/asm-generic" ] || fail "$where: include/asm-generic still exists after being renamed"
  rm -rf "$d/ops/linux/netfilter"

  check "$where: link counts after ln and rm"
  echo linked >"$d/ops/l"
  ln "$d/ops/l" "$d/ops/l2"
  want "$(nlink "$d/ops/l")" 2 "nlink after one ln"
  ln "$d/ops/l" "$d/sizes/l3"
  want "$(nlink "$d/ops/l2")" 3 "nlink after two ln"
  rm "$d/ops/l2"
  want "$(nlink "$d/ops/l")" 2 "nlink after rm of one link"
  rm "$d/ops/l"
  want "$(nlink "$d/sizes/l3")" 1 "nlink after rm of two links"
  want "$(cat "$d/sizes/l3")" linked "content of the last link"
  mkdir "$d/ops/nl" "$d/ops/nl/a" "$d/ops/nl/b"
  want "$(nlink "$d/ops/nl")" 4 "directory nlink with 2 subdirectories"
  rmdir "$d/ops/nl/a"
  want "$(nlink "$d/ops/nl")" 3 "directory nlink after rmdir"

  check "$where: chmod, chown, truncate up and down"
  chmod 0640 "$d/sizes/f4097"
  want "$(stat -c %a "$d/sizes/f4097")" 640 "mode after chmod 0640"
  chmod 4711 "$d/modes/m0755"
  want "$(stat -c %a "$d/modes/m0755")" 4711 "mode after chmod 4711"
  chown 2345:3456 "$d/sizes/f1"
  want "$(stat -c %u:%g "$d/sizes/f1")" 2345:3456 "owner after chown"
  chown 7:7 "$d/modes/m4755" # chown clears setuid, as on any local disk
  want "$(stat -c %a "$d/modes/m4755")" 755 "mode after chown of a setuid file"
  truncate -s $((10 * MiB)) "$d/sizes/f$((4 * MiB + 1))"
  want "$(stat -c %s "$d/links/big-hard")" $((10 * MiB)) "size of a hard link after truncate up"
  want "$(tail -c 4096 "$d/links/big-hard" | tr -d '\0' | wc -c)" 0 "bytes after truncate up (must be zeros)"
  truncate -s 5000003 "$d/sizes/f$((100 * MiB))"
  want "$(stat -c %s "$d/sizes/f$((100 * MiB))")" 5000003 "size after truncate down"
  [ "$(mtime "$d/sizes/f$((100 * MiB))")" -ge "$T0" ] || fail "$where: mtime not updated by truncate"
  truncate -s 100 "$d/sizes/f4097"
  truncate -s 6000 "$d/sizes/f4095"
  truncate -s 0 "$d/sizes/f4096"
  truncate -s $((4 * MiB - 10)) "$d/sizes/f$((4 * MiB))"
  truncate -s $((6 * MiB)) "$d/sizes/f$((4 * MiB))"
  dd if="$S/patch" of="$d/sizes/f$((4 * MiB - 1))" bs=1 seek=$((4 * MiB - 10)) conv=notrunc status=none
  dd if="$S/patch" of="$d/xattrs/big-with-xattr" bs=1 seek=1000 conv=notrunc status=none

  check "$where: setfattr, getfattr, removal"
  setfattr -n user.new -v fresh "$d/xattrs/file"
  setfattr -n user.a -v replaced "$d/xattrs/file"
  setfattr -x user.to-remove "$d/xattrs/file"
  want "$(getfattr --absolute-names --only-values -n user.a "$d/xattrs/file")" replaced "user.a after replacing it"
  want "$(getfattr --absolute-names --only-values -n user.new "$d/xattrs/file")" fresh "user.new"
  if getfattr --absolute-names -n user.to-remove "$d/xattrs/file" >/dev/null 2>&1; then
    fail "$where: user.to-remove still readable after setfattr -x"
  fi
  want "$(getfattr --absolute-names -d "$d/xattrs/file" 2>/dev/null | grep -c '^user\.')" 5 "number of user xattrs"
  setfattr -n user.added -v later "$d/sizes/f$((4 * MiB + 1))"
  want "$(getfattr --absolute-names --only-values -n user.added "$d/links/big-hard")" later "xattr seen through a hard link"

  check "$where: another user (uid 65534) reads a 0644 file, is refused a 0600 one and writes"
  mkdir -m 0755 "$d/multiuser"
  echo public >"$d/multiuser/public" && chmod 0644 "$d/multiuser/public"
  echo secret >"$d/multiuser/secret" && chmod 0600 "$d/multiuser/secret"
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  want "$(as_nobody cat "$d/multiuser/public" 2>&1)" public "uid 65534 reading a 0644 file"
  if as_nobody cat "$d/multiuser/secret" >/dev/null 2>&1; then fail "$where: uid 65534 could read a 0600 root file"; fi
  if as_nobody sh -c "echo x >>'$d/multiuser/public'" 2>/dev/null; then fail "$where: uid 65534 could write a 0644 root file"; fi
  if as_nobody touch "$d/multiuser/new" 2>/dev/null; then fail "$where: uid 65534 could create a file in a 0755 root folder"; fi
  chmod 0777 "$d/multiuser"
  as_nobody sh -c "echo mine >'$d/multiuser/new'" || fail "$where: uid 65534 cannot create a file in a 0777 folder"
  want "$(stat -c %u:%g "$d/multiuser/new")" 65534:65534 "owner of a file another user created"

  check "$where: O_APPEND"
  echo one >>"$d/ops/app"
  echo two >>"$d/ops/app"
  want "$(cat "$d/ops/app")" $'one\ntwo' "content after two appends"
  echo tail >>"$d/sizes/f$((4 * MiB))"
  want "$(tail -c 5 "$d/sizes/f$((4 * MiB))")" tail "end of a 6 MiB file after an append"
  want "$(stat -c %s "$d/sizes/f$((4 * MiB))")" $((6 * MiB + 5)) "size after the append"
  echo x >>"$d/sizes/f0"
  want "$(cat "$d/sizes/f0")" x "empty file after an append"
}

# Operations ran at different times on each side: give everything they touched one mtime.
settle_mtimes() { find "$1" -mindepth 1 -newermt "@$T0" ! -newermt "@$(($(date +%s) + 5))" -print0 | xargs -0 -r touch -h -d "$OLD"; }

it_log "building the reference tree on tmpfs"
build_reference
quid_init 6 4 2
quid_mount

check "cp -a of the reference tree into the mount (the sparse file with --sparse=always)"
entries=()
for e in "$R"/*; do [ "$e" = "$R/sparse" ] || entries+=("$e"); done
cp -a "${entries[@]}" "$M/" # one cp: it keeps hard links across the top-level folders
wait_settled 180
before=$(stores_kib)
cp -a --sparse=always "$R/sparse" "$M/"
sync "$M/sparse/sparse.img"
wait_settled 180
grown=$(($(stores_kib) - before))
check "a 1 GiB sparse file with 4 KiB of data takes little room in the stores (grew ${grown} KiB)"
[ "$grown" -lt $((32 * 1024)) ] || fail "storing a 1 GiB sparse file with 4 KiB of data grew the stores by ${grown} KiB"
compare_trees "$R" "$M" "after cp -a"

drop_caches
compare_trees "$R" "$M" "after dropping caches"

sleep 1.1
T0=$(date +%s)
semantics "$R" tmpfs
semantics "$M" quid
settle_mtimes "$R"
settle_mtimes "$M"
compare_trees "$R" "$M" "after operations through the mount"

check "quid umount exits 0, then remount (caches dropped) shows the same tree"
quid_umount
drop_caches
quid_mount
compare_trees "$R" "$M" "after umount and remount"
check "status after remount: nothing pending"
wait_settled 60
quid_umount
it_done
