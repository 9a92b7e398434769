#!/usr/bin/env bash
# bench.sh [--quick | --full] [--out DIR]: the benchmarks of bench/, side by
# side with plain TCP and TLS 1.3 (OpenSSL) in one run.
#
#   --quick (default)  about a minute of measuring; writes DIR (default
#                      build/bench-results/quick): one JSON file per program,
#                      results.json (all of them plus the targets),
#                      results.md and the PNG plots.
#   --full             longer runs, 1 GiB transfers, repetitions; writes
#                      build/bench-results/full and regenerates
#                      docs/BENCHMARKS.md and docs/bench/*.png from it.
#
# Installs what it needs (Debian packages), builds build/bench-release
# (Release, -DTCPCRYPT_BUILD_BENCH=ON) if needed, then runs each program:
#   setup_bench    connection setup and authenticated setup (rate, server CPU)
#   bulk_bench     bulk throughput per AEAD
#   latency_bench  time to the first authenticated byte, in round trips
#   memory_bench   memory per idle connection
#   micro_bench    Google Benchmark micro-benchmarks (engine, authenticators)
# and bench/report.py, which computes the targets as ratios and draws the
# plots. The client runs pinned to CPU 0, each server to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=quick
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
out="${out:-build/bench-results/$mode}"

bash scripts/deps.sh libbenchmark-dev python3 python3-matplotlib

dir=build/bench-release
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTCPCRYPT_BUILD_BENCH=ON >/dev/null
fi
programs=(setup_bench bulk_bench latency_bench memory_bench micro_bench)
cmake --build "$dir" -j"$(nproc)" --target "${programs[@]}"

mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.md "$out"/*.png
start=$(date +%s)
for p in setup bulk latency memory micro; do
  echo "bench: $p ($mode)" >&2
  "$dir/bench/${p}_bench" "--$mode" --json "$out/$p.json"
done
measured=$(( $(date +%s) - start ))

report_args=(--in "$out" --mode "$mode" --seconds "$measured"
  --command "bash scripts/bench.sh --$mode")
if [ "$mode" = full ]; then
  report_args+=(--docs docs/BENCHMARKS.md --plots-dir docs/bench)
fi
# Debian's interpreter, where apt installed python3-matplotlib.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
"$py" bench/report.py "${report_args[@]}"
echo "bench: measured for ${measured} s; results in $out" >&2
