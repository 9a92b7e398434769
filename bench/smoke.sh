#!/usr/bin/env bash
# smoke.sh BIN_DIR: the BenchSmoke test. Runs every benchmark program for a
# fraction of a second on every row that a target depends on, then
# bench/report.py on the result, and fails unless every program ran, every
# target could be computed (none "not measured") and the plots were drawn.
# It checks that the harness works, not what the numbers are: CI machines
# are too noisy for performance assertions (those live in scripts/bench.sh).
set -euo pipefail
bin="$1"
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
# Debian's interpreter, where apt installed python3-matplotlib (a python3
# earlier on PATH, e.g. pyenv's, would not see it).
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
trap 'rm -rf "$out"' EXIT

"$bin/setup_bench" --seconds 0.15 --json "$out/setup.json" \
  --rows plain_tcp,tcpcrypt_fresh_x25519,tcpcrypt_resumed,tls13_full,tcpcrypt_cmac,tcpcrypt_pake,tcpcrypt_x509_c128,tls13_cert_c1,tls13_cert_c128 \
  >"$out/setup.log"
"$bin/bulk_bench" --bytes 8388608 --repeat 1 --json "$out/bulk.json" \
  --rows plain_tcp,tcpcrypt_aes128gcm,tls13_aes128gcm >"$out/bulk.log"
"$bin/latency_bench" --delay-ms 2 --samples 1 --json "$out/latency.json" \
  --rows plain_tcp,tcpcrypt_fresh,tcpcrypt_resumed,tls13_full,tls13_resumed >"$out/latency.log"
"$bin/memory_bench" --connections 40 --json "$out/memory.json" >"$out/memory.log"
"$bin/micro_bench" --quick --benchmark_filter='engine/hkdf|engine/handshake/resumed' \
  --json "$out/micro.json" >"$out/micro.log"

"$py" "$here/report.py" --in "$out" --mode smoke >"$out/report.log" 2>&1 || {
  cat "$out/report.log"; exit 1; }
"$py" - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]
r = json.load(open(os.path.join(out, "results.json")))
bad = [t["target"] for t in r["targets"] if t["met"] is None and not t.get("informational")]
for name in ("setup", "bulk", "latency", "memory", "micro"):
    if not r.get(name):
        bad.append(f"{name}.json missing or empty")
for name in ("setup", "bulk", "latency", "memory"):
    for row in (r.get(name) or {}).get("rows", []):
        if row.get("failures") or row.get("client_failures") or row.get("server_failures"):
            bad.append(f"{name}: row {row['name']} had failures")
pngs = [f for f in os.listdir(out) if f.endswith(".png")]
if len(pngs) < 4:
    bad.append(f"only {len(pngs)} plots drawn")
for t in r["targets"]:
    print(f"  {t['target']}: {t['shown']}")
if bad:
    print("BenchSmoke FAILED:\n  " + "\n  ".join(bad))
    sys.exit(1)
print(f"BenchSmoke: {len(r['targets'])} targets computed, {len(pngs)} plots")
EOF
