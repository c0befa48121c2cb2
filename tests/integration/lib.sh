# shellcheck shell=bash
# Shared helpers for the integration scripts in this folder (sourced, never run).
#
# Each script: `set -euo pipefail`, sources this file, calls `it_setup NAME QUID_BINARY`, and then
# uses the helpers below. it_setup checks the preconditions (root, FUSE), mounts a size-limited
# tmpfs at $S for all scratch (homes, stores, reference trees: big and sparse files never reach the
# real disk), and installs a trap that unmounts everything and stops every process the script
# started, whatever way it exits. A failure prints one line, "<test>: FAIL: <reason>", to stderr
# and exits 1. FUSE missing is a failure, not a skip: in CI FUSE must work.
#
# Run one: `sudo bash tests/integration/store_loss_test.sh BUILD/cmd/quid`; all of them:
# `ctest -L fuse` in the build folder (each is registered with the quid binary as its argument).
# IT_KEEP=DIR in the environment keeps the full manifest diff of every failed comparison there,
# and the logs of a failed test's daemons in DIR/NAME.logs.
#
# Variables after it_setup: QUID (absolute path of the binary), S (scratch tmpfs), H (volume home),
# M (mount point), STORE_DIRS (array, filled by quid_init), IT_NAME.

# shellcheck disable=SC2034 # used by the scripts that source this file
MiB=$((1024 * 1024))
IT_FAILED=0
IT_ERRORS=()    # failed checks that let the script go on (see soft_fail); it_done reports them
IT_BG_PIDS=()   # background processes started by the script (killed with their process group)

it_log() { printf '[%s %s] %s\n' "$IT_NAME" "$(date +%T)" "$*"; }
# One check, announced before it runs.
check() { it_log "check: $*"; }
fail() {
  IT_FAILED=1
  printf '%s: FAIL: %s\n' "$IT_NAME" "$*" >&2
  exit 1
}
# A failed check after which the remaining checks still mean something: note it, go on, and let
# it_done fail the script (with the first reason) at the end.
soft_fail() {
  printf '%s: CHECK FAILED: %s\n' "$IT_NAME" "$*" >&2
  IT_ERRORS+=("$*")
}
# The end of a script: fail if any check failed along the way.
it_done() {
  local n=${#IT_ERRORS[@]}
  [ "$n" = 0 ] || fail "$n check(s) failed; first: ${IT_ERRORS[0]}"
}
# set -e stops at an unexpected failing command; say which one, on one line.
it_on_err() {
  local rc=$? line=$1 cmd=$2
  [ "$IT_FAILED" = 1 ] && return
  IT_FAILED=1
  # shellcheck disable=SC2016 # the backquotes are literal
  printf '%s: FAIL: line %s: `%s` exited %s\n' "$IT_NAME" "$line" "$cmd" "$rc" >&2
}

it_setup() {
  IT_NAME=$1
  local bin=${2:-}
  IT_START=$(date +%s)
  set -E
  trap 'it_on_err "$LINENO" "$BASH_COMMAND"' ERR
  [ -n "$bin" ] || fail "usage: $0 PATH_TO_QUID"
  [ "$(id -u)" = 0 ] || fail "must run as root (FUSE mounts, tmpfs, chown, drop_caches)"
  QUID=$(readlink -f "$bin")
  [ -x "$QUID" ] || fail "$bin is not an executable"
  [ -c /dev/fuse ] || fail "/dev/fuse is missing: FUSE is unavailable (it must work here)"
  command -v fusermount3 >/dev/null || fail "fusermount3 is missing (apt install fuse3)"
  local t
  for t in getfattr setfattr sha256sum find mountpoint; do
    command -v "$t" >/dev/null || fail "$t is missing (apt install attr coreutils findutils util-linux)"
  done
  S=$(mktemp -d "/tmp/quid-it-$IT_NAME.XXXXXX")
  trap it_cleanup EXIT
  trap 'exit 130' INT TERM
  mount -t tmpfs -o "size=${IT_TMPFS_SIZE:-3g},mode=755" "quid-it-$IT_NAME" "$S" ||
    fail "cannot mount a size-limited tmpfs at $S"
  H=$S/home
  M=$S/mnt
  mkdir -p "$M"
  chmod 755 "$M"
  export QUID_PASSPHRASE="integration-$IT_NAME-passphrase"
  unset QUID_HOME
  it_log "scratch tmpfs (${IT_TMPFS_SIZE:-3g}) at $S; quid is $QUID"
}

# Mount points under $S, deepest first.
it_mounts_under() {
  awk -v s="$1/" 'index($2, s) == 1 {print $2}' /proc/self/mounts | sort -r
}

# PIDs of mount daemons serving a home under $S (the daemon keeps `quid mount`'s command line).
it_daemon_pids() { pgrep -f "quid mount --home $S/" || true; }

it_cleanup() {
  local rc=$? p m i
  trap - ERR
  set +e
  for p in "${IT_BG_PIDS[@]}"; do kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null; done
  if [ "$rc" != 0 ] && [ -n "${IT_KEEP:-}" ] && [ -n "${S:-}" ] && [ -d "$S" ]; then
    # the daemons' logs, for a person to read after the scratch tmpfs is gone
    mkdir -p "$IT_KEEP/$IT_NAME.logs" &&
      find "$S" -maxdepth 3 -name '*.log' -not -path "$S/mnt/*" -not -path '*/meta/*' -exec cp --backup=numbered {} "$IT_KEEP/$IT_NAME.logs/" \; 2>/dev/null
  fi
  if [ -n "${S:-}" ] && [ -d "$S" ]; then
    for m in $(it_mounts_under "$S"); do
      [ "$m" = "$S" ] && continue
      fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    for p in $(it_daemon_pids); do kill "$p" 2>/dev/null; done
    for i in $(seq 20); do [ -z "$(it_daemon_pids)" ] && break; sleep 0.25; done
    for p in $(it_daemon_pids); do kill -9 "$p" 2>/dev/null; done
    for i in $(seq 20); do umount "$S" 2>/dev/null && break; sleep 0.25; done
    mountpoint -q "$S" && umount -l "$S"
    rmdir "$S" 2>/dev/null
  fi
  if [ "$rc" = 0 ]; then
    it_log "PASS in $(($(date +%s) - IT_START)) s"
  elif [ "$IT_FAILED" = 0 ]; then
    printf '%s: FAIL: exited %s\n' "$IT_NAME" "$rc" >&2
  fi
  exit "$rc"
}

# Run "$@" in the background in its own process group, remembered for cleanup. Sets BG_PID.
start_bg() {
  setsid "$@" &
  BG_PID=$!
  IT_BG_PIDS+=("$BG_PID")
}
# Kill a process started by start_bg, with everything in its process group.
kill_bg() {
  kill -9 -- "-$1" 2>/dev/null || kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# quid init --home $H with N store folders under $S (k=4, m=2 unless K/M given).
quid_init() {
  local n=${1:-6} k=${2:-4} m=${3:-2} i args=()
  STORE_DIRS=()
  for i in $(seq 1 "$n"); do
    STORE_DIRS+=("$S/store$i")
    args+=(--store "$S/store$i")
  done
  "$QUID" init --home "$H" --data "$k" --parity "$m" "${args[@]}" >"$S/init.log" 2>&1 \
    || fail "quid init failed: $(tail -1 "$S/init.log")"
  it_log "volume created: $k+$m over $n store folders"
}

# PID of the mount daemon serving home $H, empty if none.
daemon_pid() { pgrep -f "quid mount --home $H " | head -1 || true; }

# quid mount (daemon mode, --cache-size 0, -o allow_other) of $H at $M. `quid mount` must return 0
# with the volume already mounted. Sets DAEMON_PID.
quid_mount() {
  local rc=0
  "$QUID" mount --home "$H" --cache-size 0 -o allow_other "$M" >>"$S/mount.out" 2>&1 || rc=$?
  [ "$rc" = 0 ] || fail "quid mount exited $rc: $(tail -1 "$S/mount.out"); daemon log: $(tail -1 "$H/mount.log" 2>/dev/null)"
  mountpoint -q "$M" || fail "quid mount returned 0 but $M is not a mount point"
  DAEMON_PID=$(daemon_pid)
  [ -n "$DAEMON_PID" ] || fail "quid mount returned but no mount daemon for $H is running"
  grep -q "^[^ ]* $M fuse" /proc/self/mounts || fail "$M is mounted, but not as a FUSE file system"
  grep "^[^ ]* $M " /proc/self/mounts | grep -q allow_other || fail "$M is mounted without allow_other"
}

# quid umount $M: must exit 0; then the mount and the daemon must be gone (within 60 s).
quid_umount() {
  local rc=0 i pid
  pid=$(daemon_pid)
  "$QUID" umount "$M" >"$S/umount.out" 2>&1 || rc=$?
  [ "$rc" = 0 ] || fail "quid umount exited $rc: $(tail -1 "$S/umount.out")"
  ! mountpoint -q "$M" || fail "quid umount exited 0 but $M is still mounted"
  for i in $(seq 240); do
    { [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; } && return 0
    sleep 0.25
  done
  fail "the mount daemon ($pid) is still running 60 s after quid umount"
}

# The daemon's JSON status field $1 (a number), for home $H.
status_field() {
  local json
  json=$("$QUID" status --home "$H" --json 2>&1) || fail "quid status --json failed: $json"
  printf '%s' "$json" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2
}

# Wait until the daemon reports 0 bytes pending (up to $1 seconds, default 120).
wait_settled() {
  local limit=${1:-120} i p=""
  for i in $(seq $((limit * 4))); do
    p=$(status_field pending_bytes)
    [ "$p" = 0 ] && return 0
    sleep 0.25
  done
  fail "quid status still shows $p bytes pending after ${limit} s"
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Disk usage (KiB actually allocated) of the store folders.
stores_kib() { du -sk "${STORE_DIRS[@]}" | awk '{s += $1} END {print s + 0}'; }

# manifest DIR OUT: one sorted description of everything under DIR (not DIR itself):
#   E path type mode uid gid size mtime(s) nlink symlink-target link-group
#   H path sha256                      (regular files)
#   X path xattr-name=hex-value        (every namespace getfattr shows)
# Directory sizes are left out (they differ by file system); hard links are named by the first
# path (in sort order) of their inode, so two trees compare without inode numbers.
manifest() {
  local dir=$1 out=$2
  (
    cd "$dir" || exit 1
    find . -mindepth 1 -printf '%P\t%y\t%m\t%U\t%G\t%s\t%T@\t%n\t%l\t%i\n' | LC_ALL=C sort -t $'\t' -k1,1 \
      | awk -F '\t' -v OFS='\t' '{
          size = ($2 == "d") ? "-" : $6
          split($7, t, "."); mt = t[1]
          grp = "-"
          if ($2 != "d" && $8 > 1) { if (!($10 in first)) first[$10] = $1; grp = first[$10] }
          print "E", $1, $2, $3, $4, $5, size, mt, $8, $9, grp
        }'
    find . -mindepth 1 -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum -- \
      | awk '{h = $1; sub(/^[^ ]*  /, ""); print "H\t" $0 "\t" h}'
    getfattr -R -P -h -d -m - -e hex . 2>/dev/null \
      | awk '/^# file: / {f = substr($0, 9); sub(/^\.\//, "", f); next}
             /^$/ || f == "." {next}
             {print "X\t" f "\t" $0}' | LC_ALL=C sort
  ) >"$out"
}

# compare_trees EXPECTED ACTUAL LABEL: content (sha256) and metadata must be identical; a
# difference is a soft_fail (the diff goes to stderr).
compare_trees() {
  local a=$1 b=$2 label=$3 ma mb n
  ma=$S/manifest.expected mb=$S/manifest.actual
  check "$label: $b matches $a (content, type, mode, owner, size, mtime, nlink, hard links, symlinks, xattrs)"
  manifest "$a" "$ma"
  manifest "$b" "$mb"
  [ -s "$ma" ] || fail "$label: empty manifest for $a"
  if ! diff -U0 "$ma" "$mb" >"$S/manifest.diff"; then
    n=$(grep -c '^[-+][^-+]' "$S/manifest.diff" || true)
    awk '/^[-+][^-+]/ && n++ < 30 {print "    " $0}' "$S/manifest.diff" >&2
    if [ -n "${IT_KEEP:-}" ]; then # keep the whole diff outside the scratch tmpfs, for a person to read
      mkdir -p "$IT_KEEP" && cp "$S/manifest.diff" "$IT_KEEP/$IT_NAME.$(date +%s%N).diff"
    fi
    soft_fail "$label: trees differ in $n manifest lines: $(describe_diff "$S/manifest.diff")"
    return 0
  fi
  it_log "  identical: $(grep -c '^E' "$ma") entries, $(grep -c '^H' "$ma") files hashed, $(grep -c '^X' "$ma" || true) xattrs"
}

# describe_diff DIFF: a manifest diff (expected -, actual +) in words: the first example of each
# kind of difference (which fields differ, missing or unexpected entries/xattrs, content), with
# how often each kind occurs.
describe_diff() {
  awk -F '\t' '
    function key(   name) { name = $3; if ($1 ~ /X$/) sub(/=.*/, "", name); else name = ""
                            return substr($1, 2) "\t" $2 "\t" name }
    /^-[EHX]\t/ { k = key(); if (!(k in minus)) { minus[k] = $0; if (!(k in plus)) order[++n] = k }; next }
    /^\+[EHX]\t/ { k = key(); if (!(k in plus)) { plus[k] = $0; if (!(k in minus)) order[++n] = k }; next }
    END {
      split("kind path type mode uid gid size mtime nlink target hardlink-group", names, " ")
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, kk, "\t"); what = ""; kind = ""
        if (!(k in plus)) { kind = "missing " (kk[1] == "X" ? "xattr " kk[3] : kk[1] == "H" ? "content" : "entry"); what = kind }
        else if (!(k in minus)) { kind = "unexpected " (kk[1] == "X" ? "xattr " kk[3] : "entry"); what = kind }
        else if (kk[1] == "H") { kind = "content differs (sha256)"; what = kind }
        else if (kk[1] == "X") { kind = "xattr " kk[3] " has another value"; what = kind }
        else {
          split(minus[k], a, "\t"); split(plus[k], b, "\t")
          for (j = 3; j <= 11; j++) if (a[j] != b[j]) {
            kind = kind " " names[j]; what = what (what ? ", " : "") names[j] " " a[j] " -> " b[j]
          }
        }
        if (!(kind in count)) { kinds[++nk] = kind; example[kind] = kk[2] ": " what }
        count[kind]++
      }
      for (i = 1; i <= nk && i <= 4; i++)
        out = out (i > 1 ? "; " : "") example[kinds[i]] (count[kinds[i]] > 1 ? " (and " count[kinds[i]] - 1 " more like it)" : "")
      print out (nk > 4 ? "; ... " nk - 4 " more kinds" : "")
    }' "$1" | tr '\t' ' '
}

# flip_byte FILE OFFSET: invert every bit of one byte, in place.
flip_byte() {
  local f=$1 off=$2 b
  b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
  [ -n "$b" ] || fail "flip_byte: $f has no byte at $off"
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' $((b ^ 255)))" | dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
}

# sums DIR OUT: "sha256  relative-path" of every regular file, sorted.
sums() { (cd "$1" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum --) >"$2"; }

# ---- Helpers for the network scripts (hosts as `quid serve` processes) ----

# The time in milliseconds.
now_ms() { date +%s%3N; }

# Run the rest of the script with a private copy of the binary on the scratch tmpfs, so a
# rebuild that relinks the original mid-run cannot break a host restart. Sets QUID.
snapshot_quid() {
  mkdir -p "$S/bin"
  cp "$QUID" "$S/bin/quid"
  QUID=$S/bin/quid
}

# node_fingerprint HOME: the node fingerprint (what `quid serve --tenant` admits) of the node whose
# home is HOME, creating its key if there is none. Uses `quid id`; with a binary that lacks it,
# falls back on the line "this node is <fp>" that `quid init --peer` prints (creating the key)
# before it contacts a host: here one that refuses at once, so no volume is created.
node_fingerprint() {
  local home=$1 out fp
  if "$QUID" id --help >/dev/null 2>&1; then
    out=$("$QUID" id --home "$home" 2>&1) || fail "quid id --home $home failed: $out"
    fp=$(printf '%s\n' "$out" | tail -1)
  else
    out=$("$QUID" init --home "$home" --peer 127.0.0.1:1 2>&1 </dev/null || true)
    fp=$(printf '%s\n' "$out" | sed -n 's/^this node is \([0-9a-f]*\).*/\1/p' | head -1)
  fi
  [[ $fp =~ ^[0-9a-f]{32}$ ]] || fail "cannot learn the node fingerprint of $home: $out"
  echo "$fp"
}

# store_states: one line per store of the volume mounted from $H, in the volume's order:
#   NAME REACHABLE(true|false) SHARD_COUNT USED_BYTES
# (parsed from `quid status --json`: each store is the only brace-free object in it). If quid
# status fails, prints why to stderr and returns 1.
store_states() {
  local json
  if ! json=$(timeout 120 "$QUID" status --home "$H" --json 2>&1); then
    printf 'quid status --json failed: %s\n' "$json" >&2
    return 1
  fi
  printf '%s' "$json" | grep -o '{[^{}]*}' | awk '{
    n = "?"; r = "?"; c = "?"; u = "?"
    if (match($0, /"name":"[^"]*"/)) n = substr($0, RSTART + 8, RLENGTH - 9)
    if (match($0, /"reachable":(true|false)/)) r = substr($0, RSTART + 12, RLENGTH - 12)
    if (match($0, /"shard_count":[0-9]+/)) c = substr($0, RSTART + 14, RLENGTH - 14)
    if (match($0, /"used_bytes":[0-9]+/)) u = substr($0, RSTART + 13, RLENGTH - 13)
    print n, r, c, u
  }'
}

# store_state ADDR [FIELD]: the store_states line (or its FIELD: 2 reachable, 3 shard count, 4 used
# bytes) of the store whose name ends in ":ADDR" (ADDR is HOST:PORT).
store_state() {
  local states
  states=$(store_states) || return 1
  printf '%s\n' "$states" | awk -v a=":$1" -v f="${2:-0}" \
    'length($1) >= length(a) && substr($1, length($1) - length(a) + 1) == a {print (f ? $f : $0); exit}'
}

# wait_store_reachable ADDR true|false LIMIT_S LABEL: poll quid status until it shows the store at
# ADDR reachable (or not). Sets WAITED (seconds, to 0.1) and returns 0 once it does; returns 1 after
# LIMIT_S. Each status call that fails (or takes over 10 s) is a soft_fail: status must keep
# answering while a host is away. Run it in the script's shell, not in $(...).
wait_store_reachable() {
  local addr=$1 want=$2 limit=$3 label=$4 t0 t1 got slow=0 failed=0 first=""
  t0=$(now_ms)
  WAITED=""
  while :; do
    t1=$(now_ms)
    if got=$(store_state "$addr" 2 2>"$S/status.err"); then
      [ $(($(now_ms) - t1)) -le 10000 ] || slow=$((slow + 1))
    else
      failed=$((failed + 1))
      [ -n "$first" ] || first="after $(($(now_ms) - t1)) ms: $(tail -1 "$S/status.err")"
      got=""
    fi
    [ "$got" = "$want" ] && break
    if [ $(($(now_ms) - t0)) -ge $((limit * 1000)) ]; then got=""; break; fi
    sleep 0.25
  done
  [ "$failed" = 0 ] || soft_fail "$label: quid status failed $failed time(s) while waiting for $addr to be reachable=$want; first $first"
  [ "$slow" = 0 ] || soft_fail "$label: quid status took over 10 s $slow time(s) while waiting for $addr to be reachable=$want"
  [ "$got" = "$want" ] || return 1
  WAITED=$(awk -v d=$(($(now_ms) - t0)) 'BEGIN {printf "%.1f", d / 1000}')
}

# write_mixed_tree DIR N [LINUX]: N files of assorted sizes (0, 1, 4095, 4097, 1 MiB, 4 MiB+1,
# random up to ~1.2 MB, 13 MB; from /dev/urandom) under DIR/sub, and a copy of /usr/include/linux
# under DIR/sub/deep unless LINUX is 0.
write_mixed_tree() {
  local d=$1 n=$2 linux=${3:-1} i size
  mkdir -p "$d/sub/deep"
  for i in $(seq 1 "$n"); do
    case $((i % 8)) in
      0) size=0 ;; 1) size=1 ;; 2) size=4095 ;; 3) size=4097 ;; 4) size=1048576 ;;
      5) size=4194305 ;; 6) size=$((RANDOM * 37)) ;; 7) size=13000000 ;;
    esac
    head -c "$size" /dev/urandom >"$d/sub/f$i"
  done
  if [ "$linux" = 1 ]; then cp -a /usr/include/linux "$d/sub/deep/"; fi
}

# verify_sums DIR SUMS LABEL: every file listed in SUMS (see `sums`) reads back with its sha256
# under DIR; otherwise a soft_fail naming how many differ or fail to read, and the first one.
# Sets VERIFY_OK to 1 or 0 (and returns 0 either way, so set -e does not stop the script).
verify_sums() {
  local dir=$1 list=$2 label=$3 bad
  VERIFY_OK=1
  if (cd "$dir" && sha256sum --quiet -c "$list") >"$S/verify.out" 2>&1; then
    it_log "  $label: $(wc -l <"$list") files verified"
    return 0
  fi
  VERIFY_OK=0
  bad=$(grep -c ': FAILED' "$S/verify.out" || true)
  soft_fail "$label: $bad of $(wc -l <"$list") files differ or fail to read under $dir; first: $(grep -m1 ': FAILED' "$S/verify.out")"
}

# Waits up to $2 seconds until `quid status --json` for home $1 shows no degraded chunk (every
# chunk's shards on distinct, reachable stores). Sets DEGRADED to the last count seen.
wait_no_degraded() {
  local home=$1 limit=$2 i
  DEGRADED=?
  for i in $(seq $((limit * 2))); do
    DEGRADED=$(timeout 20 "$QUID" status --home "$home" --json | grep -o '"chunks_degraded":[0-9]*' | cut -d: -f2)
    [ "${DEGRADED:-x}" = 0 ] && return 0
    sleep 0.5
  done
  return 1
}

# --- the hosts of a `quid demo` whose workdir is $W: node 1 ($W/node1) mounts its volume, hosts
# 1..6 are its partners, nodes 2..7 ($W/node2 ...); the ports file lists one port per node ---

# start_demo ARGS...: `quid demo --nodes 7 --workdir $W ARGS... $M` in the background (log in
# $S/demo.log, pid in DEMO_PID); returns once $M is mounted (60 s at most).
start_demo() {
  local n
  start_bg "$QUID" demo --nodes 7 --workdir "$W" --heartbeat 1s "$@" "$M" >"$S/demo.log" 2>&1
  DEMO_PID=$BG_PID
  for n in $(seq 120); do mountpoint -q "$M" && return 0; kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.5; done
  fail "quid demo did not mount $M: $(tail -1 "$S/demo.log")"
}
port_of() { sed -n "$(($1 + 1))p" "$W/ports"; }
addr_of() { echo "127.0.0.1:$(port_of "$1")"; }
host_home() { echo "$W/node$(($1 + 1))"; }
host_pid() { pgrep -f "quid serve --home $(host_home "$1") " | head -1 || true; }

# kill_host I: SIGKILL host I, after keeping its exact command line for restart_host.
kill_host() {
  local i=$1 pid n state
  pid=$(host_pid "$i")
  [ -n "$pid" ] || fail "host $i (quid serve --home $(host_home "$i")) is not running"
  cp "/proc/$pid/cmdline" "$S/cmdline.$i"
  kill -9 "$pid"
  { wait "$pid"; } 2>/dev/null || true # reaps it if this shell started it (a restarted host), quietly
  for n in $(seq 50); do # gone, or a zombie its parent has not reaped yet
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    if [ -z "$state" ] || [ "$state" = Z ]; then return 0; fi
    sleep 0.1
  done
  fail "host $i ($pid) still runs 5 s after SIGKILL"
}

# restart_host I: start host I again with the command line it had (argv[0] -> this binary),
# then wait (15 s) until it listens on its port.
restart_host() {
  local i=$1 args n
  mapfile -d '' -t args <"$S/cmdline.$i"
  args[0]=$QUID
  [ "${args[1]}" = serve ] || fail "host $i's command line is not quid serve: ${args[*]}"
  start_bg "${args[@]}" >>"$(host_home "$i")/restart.log" 2>&1
  for n in $(seq 60); do
    ss -Hltn "sport = :$(port_of "$i")" | grep -q . && return 0
    kill -0 "$BG_PID" 2>/dev/null || fail "restarted host $i exited: $(tail -1 "$(host_home "$i")/restart.log")"
    sleep 0.25
  done
  fail "restarted host $i does not listen on port $(port_of "$i") after 15 s"
}

# --- The exchange: node daemons (quid serve) with homes $S/nI on loopback ports ---
# FLAGS (serve's timing flags) is set by the test before serve is called.
declare -a PORT NODE_PID
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    [[ " ${PORT[*]:-} " == *" $p "* ]] && continue
    [ -z "$(ss -ltnH "sport = :$p")" ] && { echo "$p"; return; }
  done
}
serve() {
  local i=$1 j
  [ -n "${PORT[$i]:-}" ] || PORT[$i]=$(free_port)
  setsid "$QUID" serve --home "$S/n$i" --listen "127.0.0.1:${PORT[$i]}" "${FLAGS[@]}" \
    </dev/null >>"$S/serve$i.log" 2>&1 &
  NODE_PID[$i]=$!
  IT_BG_PIDS+=("$!")
  disown "$!"  # no job notice when the script kills it
  for j in $(seq 100); do
    [ -n "$(ss -ltnH "sport = :${PORT[$i]}")" ] && return 0
    kill -0 "${NODE_PID[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  fail "quid serve (node $i) did not start listening: $(tail -1 "$S/serve$i.log")"
}
fp() { "$QUID" id --home "$S/n$1"; }
invite() { "$QUID" invite --home "$S/n$1" --capacity "$2" "${@:3}" 2>>"$S/invite.log" | tail -1; }
# join I CODE: quid join on node I; its exit status; the output in $S/join.out
join() { "$QUID" join --home "$S/n$1" "$2" >"$S/join.out" 2>&1; }
# leases I: "direction state peer capacity_bytes id", sorted
leases() {
  "$QUID" leases --home "$S/n$1" --json | python3 -c 'import json, sys
for l in json.loads(sys.stdin.readline())["leases"]:
    print(l["direction"], l["state"], l["peer"], l["capacity_bytes"], l["id"])' | sort
}

# volume_on_partners N MOUNT_FLAGS...: node 1 (home $H = $S/n1) invites nodes 2..N (48 MiB each
# way), waits a heartbeat round (so it knows its partners' labels), makes a 4+2 volume on those
# leases and mounts it at $M with MOUNT_FLAGS; then a mixed tree and a 9 MiB file go in
# ($S/ref, sums in $S/sums) and are stored. The node daemons must be running (serve).
volume_on_partners() {
  local n=$1 i
  shift
  for i in $(seq 2 "$n"); do
    join "$i" "$(invite 1 48M)" || fail "node $i could not join node 1: $(cat "$S/join.out")"
  done
  sleep 2
  "$QUID" init --home "$H" --data 4 --parity 2 >"$S/init.log" 2>&1 || fail "quid init failed: $(tail -1 "$S/init.log")"
  "$QUID" mount --home "$H" --cache-size 0 "$@" "$M" >>"$S/mount.out" 2>&1 ||
    fail "the volume did not mount: $(tail -1 "$S/mount.out")"
  write_mixed_tree "$S/ref" 6
  head -c $((9 * MiB)) /dev/urandom >"$S/ref/big"
  sums "$S/ref" "$S/sums"
  cp -a "$S/ref/." "$M/"
  sync
  wait_settled 120
}
