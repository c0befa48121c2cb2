#!/bin/bash
# A local exchange to try by hand: `quid demo` starts six hosts on loopback (each a
# `quid serve` with its own home), creates a 4+2 volume over them and mounts it in the
# foreground under a scratch folder. Ctrl-C stores what is pending, unmounts and stops the
# hosts. Run as root (FUSE), e.g. `sudo scripts/demo.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh Release --target quid
quid=$PWD/build/release/cmd/quid

scratch=$(mktemp -d "${TMPDIR:-/tmp}/quid-demo.XXXXXX")
# mktemp makes the folder 700; others (the user behind sudo) need to reach the mount inside.
chmod 755 "$scratch"
mkdir -p "$scratch/mnt"
chmod 755 "$scratch/mnt"

mount_opts=()
# As root, allow_other lets the user who ran sudo use the volume too.
if [ "$(id -u)" -eq 0 ]; then mount_opts=(-o allow_other); fi

echo "demo: mounting at $scratch/mnt -- use it from another terminal:"
echo "  cp -a /usr/include/linux $scratch/mnt/ && ls $scratch/mnt"
echo "  $quid status --home $scratch/work/tenant"
echo "  pkill -9 -f 'quid serve --home $scratch/work/host1'   # a host dies; reads go on"
echo "demo: Ctrl-C stores what is pending, unmounts and stops the hosts"
echo "demo: the passphrase comes from QUID_PASSPHRASE or a prompt; with neither, a random one"
echo "      is kept in $scratch/work/passphrase"
echo
"$quid" demo --hosts 6 --workdir "$scratch/work" "${mount_opts[@]}" "$scratch/mnt"
echo "demo: stopped; the exchange stays in $scratch (rm -rf it when done)"
