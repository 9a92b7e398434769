#!/usr/bin/env bash
# deps.sh: installs every Debian package the build, the tests and the demo
# use, plus any package named as an argument (scripts/bench.sh adds its
# own). Safe to run again: it only calls apt-get for what is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libssl-dev libsodium-dev
  protobuf-compiler libprotobuf-dev libsqlite3-dev
  libgtest-dev libgmock-dev
  libcli11-dev nlohmann-json3-dev
  clang-14 libclang-rt-14-dev
  tcpdump iproute2 procps openssl
  "$@"
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
