#!/bin/bash
# kill -9 of the real mount daemon while a writer works through the mount, 8 times over.
# The writer makes files of random sizes (up to 8 MiB, from /dev/urandom), fsyncs each file and
# its folder, and only then appends "name sha256" to a manifest outside the mount; past 60 files
# it deletes the oldest (unlink + fsync of the folder) and notes that. After each kill (0.5 to 3 s
# in), the mount is lazily unmounted and mounted again; then every file in the manifest must have
# its exact bytes, every deleted file must stay deleted, and every file in the mount must read
# without error. At the end, quid umount exits 0, and after a remount quid status settles at
# 0 bytes pending.
# Usage (as root): daemon_kill_test.sh PATH_TO_QUID
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_setup daemon_kill "${1:-}"

ROUNDS=8
D=$M/w              # the writer's folder, inside the mount
MAN=$S/manifest     # name sha256, one line per fsynced file
GONE=$S/deleted     # names whose unlink was fsynced

# writer ROUND DIR MANIFEST DELETED SRC: runs until killed. SRC is a scratch file on the tmpfs.
writer() {
  local round=$1 dir=$2 man=$3 gone=$4 src=$5 i=0 n name sum old
  set -e
  while :; do
    i=$((i + 1))
    name=r$round-$i
    n=$(((RANDOM * 32768 + RANDOM) % (8 * 1024 * 1024 + 1)))
    head -c "$n" /dev/urandom >"$src"
    sum=$(sha256sum <"$src")
    sum=${sum%% *}
    if [ $((i % 2)) = 0 ]; then
      dd if="$src" of="$dir/$name" bs=1M conv=fsync status=none
    else
      cp "$src" "$dir/$name"
      sync "$dir/$name" # fsync(2) of the file
    fi
    sync "$dir" # fsync(2) of the folder: the new name is durable too
    echo "$name $sum" >>"$man"
    # past 60 files, delete the oldest one listed for each new one (the volume stays under ~500 MiB)
    if [ "$(wc -l <"$man")" -gt 60 ] && old=$(head -1 "$man" | cut -d' ' -f1) && [ -n "$old" ]; then
      sed -i 1d "$man"
      rm -f "$dir/$old"
      sync "$dir"
      echo "$old" >>"$gone"
    fi
  done
}

# check_files LABEL: the manifest's files are exact, deleted files are gone, everything reads.
check_files() {
  local label=$1 name sum got bad=0 f
  check "$label: $(wc -l <"$MAN") fsynced files exact, $(wc -l <"$GONE") fsynced deletions hold, every file reads"
  drop_caches
  while read -r name sum; do
    [ -e "$D/$name" ] || fail "$label: $name was fsynced (file and folder) but is missing"
    got=$(sha256sum <"$D/$name") || fail "$label: reading fsynced file $name failed"
    [ "${got%% *}" = "$sum" ] || fail "$label: fsynced file $name has wrong content ($(stat -c %s "$D/$name") bytes)"
  done <"$MAN"
  while read -r name; do
    [ ! -e "$D/$name" ] || soft_fail "$label: $name was deleted (unlink + fsync of the folder) but came back"
  done <"$GONE"
  for f in "$D"/*; do
    [ -e "$f" ] || continue
    cat "$f" >/dev/null 2>"$S/err" || bad=$((bad + 1))
  done
  [ "$bad" = 0 ] || fail "$label: $bad files in the mount fail to read; first error: $(head -1 "$S/err")"
}

quid_init 6 4 2
: >"$MAN"
: >"$GONE"
quid_mount
mkdir "$D"
sync "$D"

for round in $(seq 1 "$ROUNDS"); do
  start_bg bash -c "$(declare -f writer); writer $round '$D' '$MAN' '$GONE' '$S/src'"
  wpid=$BG_PID
  delay=$(awk -v r="$RANDOM" 'BEGIN {printf "%.2f", 0.5 + 2.5 * r / 32767}')
  sleep "$delay"
  pids=$(pgrep -f "quid mount --home $H " || true)
  [ "$(echo "$pids" | wc -w)" = 1 ] || fail "round $round: expected one mount daemon for $H, found: ${pids:-none}"
  kill_writer_alive=1
  kill -0 "$wpid" 2>/dev/null || kill_writer_alive=0
  kill -9 "$pids"
  kill_bg "$wpid"
  for i in $(seq 40); do kill -0 "$pids" 2>/dev/null || break; sleep 0.25; done
  fusermount3 -uz "$M" 2>/dev/null || umount -l "$M"
  it_log "round $round: killed the daemon after ${delay} s; writer still running then: $([ $kill_writer_alive = 1 ] && echo yes || echo "NO (it failed)"); $(wc -l <"$MAN") files listed"
  [ "$kill_writer_alive" = 1 ] || fail "round $round: the writer stopped before the kill (a write, fsync or unlink failed through the mount)"
  quid_mount # this mount serves the next round's writer
  check_files "round $round, after the kill and a remount"
done

check "quid umount after the last round exits 0"
quid_umount
check "after a remount, quid status settles at 0 bytes pending"
quid_mount
wait_settled 120
check_files "after settling"
quid_umount
it_done
