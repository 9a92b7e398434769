#!/usr/bin/env bash
# run.sh: the main job. Installs packages, builds if needed, then runs a
# real authenticated tcpcrypt session on loopback: a throw-away user store
# with a demo user, a server that requires SPAKE2+ (RFC 9383) login bound to
# the tcpcrypt session ID, and a client that logs in, sends a line and gets
# it back. Both ends print the session ID and the authenticated identity.
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

# 1. A user store with one demo user (the password never touches disk).
printf 'correct horse battery staple\n' >"$work/password"
chmod 600 "$work/password"  # the CLI refuses password files others can read
"$tool" user add demo --users "$work/users.db" --realm 127.0.0.1 --password-file "$work/password" 2>/dev/null

# 2. An echo server that requires SPAKE2+ login.
"$tool" serve --listen 127.0.0.1:0 --auth pake --users "$work/users.db" \
  >"$work/server.out" 2>"$work/server.err" </dev/null &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/server.err" 2>/dev/null && break
  sleep 0.05
done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$work/server.err" | head -n1)
[ -n "$port" ] || { echo "run: the server did not start" >&2; cat "$work/server.err" >&2; exit 1; }

# 3. The client logs in as "demo" and sends one line.
echo "hello over an authenticated tcpcrypt session" |
  "$tool" connect "127.0.0.1:$port" --auth pake --user demo --password-file "$work/password" \
    >"$work/client.out" 2>"$work/client.err" || {
  echo "run: the client failed:" >&2; cat "$work/client.err" >&2; exit 1; }
sleep 0.2
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

client_sid=$(sed -n 's/^session-id: //p' "$work/client.err")
server_sid=$(sed -n 's/^session-id: //p' "$work/server.err")
echo "client: session-id $client_sid"
echo "client: $(grep '^authenticated:' "$work/client.err")"
echo "server: session-id $server_sid"
echo "server: $(grep '^authenticated:' "$work/server.err")"
echo "client received back: $(cat "$work/client.out")"
if [ -n "$client_sid" ] && [ "$client_sid" = "$server_sid" ] &&
   grep -q "authenticated: user=demo mechanism=pake" "$work/server.err" &&
   grep -q "authenticated: server=127.0.0.1 mechanism=pake" "$work/client.err"; then
  echo "OK: both ends derived the same session ID and authenticated it with SPAKE2+"
else
  echo "FAIL" >&2
  exit 1
fi
