#!/bin/bash
# Installs what quidfs needs to build, test and benchmark on Debian 12: compilers, libraries,
# FUSE, and the tools the tests drive (fio, rsync, attr, gocryptfs for comparison).
# Skips apt entirely when everything is already installed. Run as root (or with sudo at hand).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  libfuse3-dev fuse3
  librocksdb-dev libisal-dev libsodium-dev libuv1-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  protobuf-compiler libprotobuf-dev
  clang-format
  fio rsync attr bc gocryptfs util-linux iproute2 git
)

missing=()
for p in "${packages[@]}"; do
  # dpkg -s also knows removed packages; only "install ok installed" counts.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
