#!/bin/bash
# A quidfs volume to try by hand: six local folders as shard stores (any two may be lost),
# mounted in the foreground under a scratch folder. Ctrl-C stores what is pending and
# unmounts. Run as root (FUSE), e.g. `sudo scripts/demo.sh`.
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

passphrase_args=()
if [ -z "${QUID_PASSPHRASE:-}" ]; then
  (umask 077 && head -c 24 /dev/urandom | base64 >"$scratch/passphrase")
  passphrase_args=(--passphrase-file "$scratch/passphrase")
  echo "demo: a random passphrase is in $scratch/passphrase"
fi

stores=()
for i in 1 2 3 4 5 6; do stores+=(--store "$scratch/store$i"); done
"$quid" init --home "$scratch/home" --data 4 --parity 2 "${stores[@]}" "${passphrase_args[@]}"

mount_opts=()
# As root, allow_other lets the user who ran sudo use the volume too.
if [ "$(id -u)" -eq 0 ]; then mount_opts=(-o allow_other); fi

echo
echo "demo: mounting at $scratch/mnt -- use it from another terminal:"
echo "  cp -a /usr/include/linux $scratch/mnt/ && ls $scratch/mnt"
echo "  $quid status --home $scratch/home"
echo "demo: Ctrl-C stores what is pending and unmounts"
echo
"$quid" mount --home "$scratch/home" --foreground "${mount_opts[@]}" "${passphrase_args[@]}" \
  "$scratch/mnt"
echo "demo: unmounted; the volume stays in $scratch (rm -rf it when done)"
