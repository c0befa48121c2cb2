#!/usr/bin/env bash
# The metadata-heavy and random-I/O workloads of issue 16, side by side in one run: the
# local disk, gocryptfs, securefs, a quid volume over 6 local folder stores and `quid demo`
# (node 1's volume over 6 partners on loopback). For each: 5,000 files of 100 bytes created
# and written (files/s), untar of /usr/include (s), `cp -a` of a 30,000-file tree (s),
# `git clone` of a local repository of 3,000 files (s), and 4 KiB random reads and writes
# on a 256 MiB file (IOPS, 15 s each, direct I/O where the filesystem takes it). Run as
# root from the repository root:
#   bench/fs_compare.sh            QUID=/path/to/quid skips the Release build
# The numbers go in docs/benchmarks.md. The machines are noisy: compare within one run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${QUID:-}" ]; then
  "$root/scripts/build.sh" Release --target quid >/dev/null
  QUID=$root/build/release/cmd/quid
fi
for tool in fio gocryptfs securefs git tar fusermount3; do
  command -v $tool >/dev/null || { echo "missing $tool (apt-get install -y fio gocryptfs securefs git)"; exit 1; }
done

work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" quid-fscmp.XXXXXX)
export QUID_PASSPHRASE=bench-passphrase
demo_pid=
cleanup() {
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
  for m in "$work"/mnt-*; do mountpoint -q "$m" && fusermount3 -u "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { echo "scale=2; ($2 - $1) / 1" | bc; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# The inputs, made once on the local disk.
tar -C /usr -cf "$work/include.tar" include
mkdir -p "$work/tree"
python3 - "$work/tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(300):
    os.makedirs(f"{root}/d{d:03d}")
    for f in range(100):
        with open(f"{root}/d{d:03d}/f{f:03d}", "wb") as out:
            out.write(os.urandom(64 + (d * 100 + f) % 4000))
PY
git init -q "$work/repo"
python3 - "$work/repo" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(60):
    os.makedirs(f"{root}/src{d:02d}")
    for f in range(50):
        with open(f"{root}/src{d:02d}/file{f:02d}.c", "w") as out:
            out.write(f"/* {d} {f} */\n" + "int x;\n" * (1 + (d * 50 + f) % 200))
PY
git -C "$work/repo" add -A
git -C "$work/repo" -c user.email=b@x -c user.name=b commit -qm tree

# One line of figures for the filesystem mounted at $1.
measure() {
  local dir=$1 t0 t1 small untar cp clone rr rw
  drop_caches
  t0=$(now)
  python3 - "$dir/small" <<'PY'
import os, sys
d = sys.argv[1]
os.mkdir(d)
for i in range(5000):
    with open(f"{d}/f{i:05d}", "wb") as out:
        out.write(b"x" * 100)
PY
  sync
  t1=$(now)
  small=$(echo "scale=0; 5000 / ($t1 - $t0)" | bc)
  mkdir "$dir/untar"
  t0=$(now); tar -C "$dir/untar" -xf "$work/include.tar"; sync; t1=$(now); untar=$(secs "$t0" "$t1")
  t0=$(now); cp -a "$work/tree" "$dir/tree"; sync; t1=$(now); cp=$(secs "$t0" "$t1")
  t0=$(now); git clone -q "$work/repo" "$dir/clone"; sync; t1=$(now); clone=$(secs "$t0" "$t1")
  fio --name=prep --filename="$dir/rand" --rw=write --bs=1M --size=256M --end_fsync=1 \
    --output-format=terse >/dev/null
  drop_caches
  rr=$(fio --name=rr --filename="$dir/rand" --rw=randread --bs=4k --size=256M --time_based \
    --runtime=15 --iodepth=1 --output-format=terse --terse-version=3 | awk -F';' '{print $8}')
  rw=$(fio --name=rw --filename="$dir/rand" --rw=randwrite --bs=4k --size=256M --time_based \
    --runtime=15 --iodepth=1 --end_fsync=1 --output-format=terse --terse-version=3 |
    awk -F';' '{print $49}')
  printf '%-14s %10s %8s %8s %8s %10s %10s\n' "$2" "$small" "$untar" "$cp" "$clone" "$rr" "$rw"
}

printf '%-14s %10s %8s %8s %8s %10s %10s\n' "" "files/s" "untar s" "cp -a s" "clone s" \
  "4k read/s" "4k write/s"
mkdir -p "$work/mnt-local"
measure "$work/mnt-local" local

mkdir -p "$work/gcipher" "$work/mnt-gocryptfs"
echo "$QUID_PASSPHRASE" >"$work/gpass"
gocryptfs -q -init -passfile "$work/gpass" "$work/gcipher" >/dev/null
gocryptfs -q -nosyslog -passfile "$work/gpass" "$work/gcipher" "$work/mnt-gocryptfs"
measure "$work/mnt-gocryptfs" gocryptfs

mkdir -p "$work/scipher" "$work/mnt-securefs"
securefs create --pass "$QUID_PASSPHRASE" "$work/scipher" >/dev/null
securefs mount --pass "$QUID_PASSPHRASE" -b "$work/scipher" "$work/mnt-securefs" >/dev/null 2>&1
for _ in $(seq 50); do mountpoint -q "$work/mnt-securefs" && break; sleep 0.2; done
measure "$work/mnt-securefs" securefs

mkdir -p "$work/mnt-quid"
"$QUID" init --home "$work/home" --data 4 --parity 2 \
  $(for i in 1 2 3 4 5 6; do echo --store "$work/store$i"; done) >/dev/null
"$QUID" mount --home "$work/home" "$work/mnt-quid" >/dev/null
measure "$work/mnt-quid" quid-folders
"$QUID" umount "$work/mnt-quid" >/dev/null

mkdir -p "$work/mnt-demo"
"$QUID" demo --workdir "$work/demo" "$work/mnt-demo" >>"$work/demo.log" 2>&1 &
demo_pid=$!
for _ in $(seq 120); do mountpoint -q "$work/mnt-demo" && break; sleep 0.5; done
mountpoint -q "$work/mnt-demo" || { echo "quid demo did not mount: $(tail -2 "$work/demo.log")"; exit 1; }
measure "$work/mnt-demo" quid-demo
