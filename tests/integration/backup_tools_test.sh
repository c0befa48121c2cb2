#!/bin/bash
# Backup tools against a real mount (4+2 over 6 store folders, no read cache):
#  - rsync -aHAXS of /usr/include plus big, sparse, hard-linked, xattr-carrying, odd-mode and
#    odd-owner files into the mount and back out to another folder: both copies match the source
#    (content and metadata), and a second rsync into the mount finds nothing to transfer;
#  - tar -cpf of the same tree, tar -xpf into the mount: matches;
#  - all of it again after quid umount and a remount with caches dropped;
#  - git init / commit / gc / fsck / clone inside the mount (skipped, with a message, without git).
# Usage (as root): backup_tools_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup backup_tools "${1:-}"
command -v rsync >/dev/null || fail "rsync is missing (apt install rsync)"
command -v tar >/dev/null || fail "tar is missing"

SRC=$S/src
OLD='2003-04-05 06:07:08'
build_source() {
  mkdir -p "$SRC/big" "$SRC/links" "$SRC/meta"
  cp -a /usr/include "$SRC/include"
  head -c $((30 * MiB + 777)) /dev/urandom >"$SRC/big/random"
  truncate -s 256M "$SRC/big/sparse"
  dd if=/dev/urandom of="$SRC/big/sparse" bs=64K count=2 seek=1600 conv=notrunc status=none
  dd if=/dev/urandom of="$SRC/big/sparse" bs=4K count=1 seek=$((200 * 256)) conv=notrunc status=none
  ln "$SRC/big/random" "$SRC/links/random-again"
  echo "three names" >"$SRC/links/a"
  ln "$SRC/links/a" "$SRC/links/b"
  ln "$SRC/links/a" "$SRC/meta/c"
  ln -s a "$SRC/links/sym"
  ln -s /nonexistent/target "$SRC/links/dangling"
  setfattr -n user.backup -v "keep me" "$SRC/big/random"
  setfattr -n user.bin -v 0x0001fffe "$SRC/links/a"
  setfattr -n user.dir -v yes "$SRC/meta"
  echo private >"$SRC/meta/private" && chmod 0600 "$SRC/meta/private"
  echo setuid >"$SRC/meta/setuid" && chmod 4755 "$SRC/meta/setuid"
  echo owned >"$SRC/meta/owned" && chown 1234:5678 "$SRC/meta/owned"
  mkdir "$SRC/meta/sticky" && chmod 1777 "$SRC/meta/sticky"
  mkfifo -m 0644 "$SRC/meta/fifo"
  touch -d "$OLD" "$SRC/meta/owned" "$SRC/big/sparse"
  touch -h -d "$OLD" "$SRC/links/sym"
  touch -d "$OLD" "$SRC/big" "$SRC/links" "$SRC/meta"
}

RSYNC=(rsync -aHAXS --numeric-ids)

it_log "building the source tree on tmpfs"
build_source
quid_init 6 4 2
quid_mount

check "rsync -aHAXS into the mount exits 0"
"${RSYNC[@]}" "$SRC/" "$M/rs/" >"$S/rsync.out" 2>&1 || fail "rsync into the mount failed: $(tail -1 "$S/rsync.out")"
check "a second rsync -aHAXS finds nothing to transfer"
"${RSYNC[@]}" -i "$SRC/" "$M/rs/" >"$S/rsync2.out" 2>&1 || fail "second rsync into the mount failed: $(tail -1 "$S/rsync2.out")"
if [ -s "$S/rsync2.out" ]; then
  head -5 "$S/rsync2.out" | sed 's/^/    /' >&2
  soft_fail "a second rsync -aHAXS into the mount still transferred $(wc -l <"$S/rsync2.out") items; first: $(head -1 "$S/rsync2.out")"
fi
check "rsync -aHAXS out of the mount to another folder exits 0"
"${RSYNC[@]}" "$M/rs/" "$S/out/" >"$S/rsync3.out" 2>&1 || fail "rsync out of the mount failed: $(tail -1 "$S/rsync3.out")"
compare_trees "$SRC" "$M/rs" "rsync into the mount"
compare_trees "$SRC" "$S/out" "rsync into the mount and back out"
sparse_kib=$(du -k "$S/out/big/sparse" | cut -f1)
check "the sparse file came back out sparse (rsync -S): ${sparse_kib} KiB allocated of 256 MiB"
[ "$sparse_kib" -lt 8192 ] || soft_fail "the sparse file copied back out takes ${sparse_kib} KiB"

check "tar -cpf of the tree, tar -xpf into the mount"
TAR_OPTS=(--xattrs --xattrs-include='*' --sparse --numeric-owner)
tar "${TAR_OPTS[@]}" -cpf "$S/tree.tar" -C "$SRC" .
mkdir "$M/tar"
tar "${TAR_OPTS[@]}" -xpf "$S/tree.tar" -C "$M/tar" 2>"$S/tar.err" || fail "tar -xpf into the mount failed: $(head -1 "$S/tar.err")"
rm -f "$S/tree.tar"
compare_trees "$SRC" "$M/tar" "tar -xpf into the mount"

GIT=0
if command -v git >/dev/null; then GIT=1; else it_log "git is not installed: skipping the git checks"; fi
git_in() { git -C "$1" -c user.name=quid -c user.email=quid@example.invalid -c init.defaultBranch=main "${@:2}"; }
if [ "$GIT" = 1 ]; then
  check "git init, two commits (edit, rename, binary file), gc, fsck --full --strict in the mount"
  G=$M/git
  mkdir "$G"
  git_in "$G" init -q
  cp -a /usr/include/linux/fs.h /usr/include/stdio.h "$G/"
  head -c $((2 * MiB)) /dev/urandom >"$G/blob.bin"
  git_in "$G" add -A
  git_in "$G" commit -q -m first
  echo "/* edited */" >>"$G/stdio.h"
  git_in "$G" mv fs.h renamed-fs.h
  git_in "$G" commit -q -am second
  git_in "$G" gc -q
  git_in "$G" fsck --full --strict >"$S/fsck.out" 2>&1 || fail "git fsck in the mount failed: $(head -1 "$S/fsck.out")"
  [ "$(git_in "$G" rev-list --count HEAD)" = 2 ] || fail "git log in the mount does not show 2 commits"
  [ -z "$(git_in "$G" status --porcelain)" ] || fail "git status in the mount is not clean after commit: $(git_in "$G" status --porcelain | head -1)"
  check "git clone inside the mount gives the same files"
  git clone -q "$G" "$M/git-clone" 2>"$S/clone.err" || fail "git clone inside the mount failed: $(head -1 "$S/clone.err")"
  for f in stdio.h renamed-fs.h blob.bin; do
    cmp -s "$G/$f" "$M/git-clone/$f" || fail "git clone in the mount: $f differs from the original work tree"
  done
fi

check "quid umount exits 0; remount with caches dropped"
quid_umount
drop_caches
quid_mount
compare_trees "$SRC" "$M/rs" "rsync copy after a remount"
compare_trees "$SRC" "$M/tar" "tar copy after a remount"
if [ "$GIT" = 1 ]; then
  check "after the remount: git fsck passes and the work tree is clean"
  git_in "$M/git" fsck --full --strict >"$S/fsck.out" 2>&1 || fail "git fsck after a remount failed: $(head -1 "$S/fsck.out")"
  [ -z "$(git_in "$M/git" status --porcelain)" ] || fail "git status after a remount is not clean: $(git_in "$M/git" status --porcelain | head -1)"
fi
quid_umount
it_done
