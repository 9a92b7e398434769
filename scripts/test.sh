#!/usr/bin/env bash
# test.sh: the whole test suite, exactly as CI runs it (.ci/run calls this).
#   1. GCC release build, warnings as errors: every unit, carrier and
#      integration test, and a smoke run of every benchmark (BenchSmoke).
#   2. Clang build with ASan + UBSan + libFuzzer instrumentation: the unit
#      and carrier tests again under the sanitizers, then a short smoke run
#      of every libFuzzer target on its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmarks are built and smoke-run too (BenchSmoke), so they need
# Google Benchmark and Python with matplotlib for the report.
bash scripts/deps.sh libbenchmark-dev python3 python3-matplotlib

jobs=$(nproc)
export CTEST_OUTPUT_ON_FAILURE=1

echo "== build (gcc, -Werror)"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTCPCRYPT_WERROR=ON -DTCPCRYPT_BUILD_BENCH=ON >/dev/null
cmake --build build/ci -j"$jobs"
echo "== tests"
ctest --test-dir build/ci -j"$jobs" --timeout 900

echo "== build (clang-14, ASan+UBSan+fuzzer instrumentation)"
CC=clang-14 CXX=clang++-14 cmake -S . -B build/fuzz -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTCPCRYPT_WERROR=ON -DTCPCRYPT_FUZZ=ON \
  >/dev/null
cmake --build build/fuzz -j"$jobs"
echo "== sanitizer tests and fuzz smoke"
# The integration tests (1 GiB through the CLI, packet capture) already ran
# above; under ASan they would only be slow.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/fuzz -j"$jobs" --timeout 900 -E '^Cli'
