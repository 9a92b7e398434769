#!/usr/bin/env bash
# run.sh: the main job. Installs packages, builds if needed, then runs a
# real tcpcrypt client/server session on loopback and shows that both ends
# derived the same session ID.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build/release >/dev/null
tool=build/release/sdk/tcpcrypt

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# An echo server: it sends back what it receives, over tcpcrypt.
"$tool" serve --listen 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" </dev/null &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/server.err" 2>/dev/null && break
  sleep 0.05
done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$work/server.err" | head -n1)
[ -n "$port" ] || { echo "run: the server did not start" >&2; cat "$work/server.err" >&2; exit 1; }

echo "hello over tcpcrypt" | "$tool" connect "127.0.0.1:$port" >"$work/client.out" 2>"$work/client.err"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

client_sid=$(sed -n 's/^session-id: //p' "$work/client.err")
server_sid=$(sed -n 's/^session-id: //p' "$work/server.err")
echo "client: $(grep -E '^(session-id|tep|cipher):' "$work/client.err" | tr '\n' ' ')"
echo "server: $(grep -E '^(session-id|tep|cipher):' "$work/server.err" | tr '\n' ' ')"
echo "client received back: $(cat "$work/client.out")"
if [ -n "$client_sid" ] && [ "$client_sid" = "$server_sid" ]; then
  echo "OK: both ends derived the same session ID"
else
  echo "FAIL: session IDs differ" >&2
  exit 1
fi
