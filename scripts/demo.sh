#!/bin/bash
# A local exchange to try by hand: `quid demo` starts seven nodes on loopback (each a
# `quid serve` with its own home), pairs node 1 with the six others by invitations, creates
# node 1's 4+2 volume on its leases and mounts it in the foreground under a scratch folder.
# Ctrl-C stores what is pending, unmounts and stops the nodes. Runs as root (FUSE); a user
# with sudo is asked for it.
set -euo pipefail
# Root for FUSE mounts (and, for tests, network namespaces): a user with sudo is asked once.
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "$0: run this as root (sudo is not installed)" >&2; exit 1; }
  exec sudo -E "$0" "$@"
fi
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
echo "  $quid status --home $scratch/work/node1; $quid leases --home $scratch/work/node1"
echo "  pkill -9 -f 'quid serve --home $scratch/work/node2'   # a partner dies; reads go on"
echo "demo: Ctrl-C stores what is pending, unmounts and stops the hosts"
echo "demo: the passphrase comes from QUID_PASSPHRASE or a prompt; with neither, a random one"
echo "      is kept in $scratch/work/passphrase"
echo
"$quid" demo --nodes 7 --workdir "$scratch/work" "${mount_opts[@]}" "$scratch/mnt"
echo "demo: stopped; the exchange stays in $scratch (rm -rf it when done)"
