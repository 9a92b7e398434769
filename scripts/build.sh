#!/usr/bin/env bash
# build.sh [DIR] [extra cmake args...]: configures (once) and builds.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build/release}"
shift || true
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
fi
cmake --build "$dir" -j"$(nproc)"
