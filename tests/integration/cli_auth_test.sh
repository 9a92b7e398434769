#!/usr/bin/env bash
# cli_auth_test.sh TOOL: `tcpcrypt serve/connect --auth` end to end:
# right and wrong passwords (pake, cmac), x509 with the right and a wrong
# host name, x509+cmac, and a client without --auth against a server that
# requires it. Exit codes: 0 ok, 5 authentication failed, 3 negotiation.
set -u
tool=$1
sample=${2:-}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
fail=0
check() {  # check NAME EXPECTED_CODE ACTUAL_CODE
  if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: exit $3, expected $2"; fail=1; fi
}
start() {  # start NAME ARGS... ; sets $port
  local name=$1; shift
  "$tool" serve --listen 127.0.0.1:0 "$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q "listening on" "$work/$name.err" 2>/dev/null && break; sleep 0.05; done
  port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$work/$name.err" | head -n1)
}

printf 'right\n' >"$work/right"; printf 'wrong\n' >"$work/wrong"
chmod 600 "$work/right" "$work/wrong"  # the CLI refuses password files others can read
# Records are bound to the server's name as clients dial it (--realm).
"$tool" user add alice --users "$work/u.db" --kdf test --password-file "$work/right" 2>/dev/null
check "user add without --realm" 1 $?
grep -q -- "--realm is required" <("$tool" user add alice --users "$work/u.db" --kdf test \
     --password-file "$work/right" 2>&1) || { echo "FAIL user add --realm message"; fail=1; }
for realm in 127.0.0.1 localhost; do
  "$tool" user add alice --users "$work/u.db" --realm "$realm" --kdf test \
    --password-file "$work/right" 2>/dev/null || { echo "FAIL user add --realm $realm"; fail=1; }
done
"$tool" cert --out "$work/pki" --host localhost 2>/dev/null

for mech in pake cmac; do
  start "$mech" --auth "$mech" --users "$work/u.db"
  # The default floor (interactive) refuses the test records' cost before
  # any proof is sent (first: a successful login re-hashes the record at
  # the server's interactive target).
  echo x | "$tool" connect "127.0.0.1:$port" --auth "$mech" --user alice \
        --password-file "$work/right" >/dev/null 2>"$work/floor.err"; check "$mech below the KDF floor" 5 $?
  grep -q "below this client's floor" "$work/floor.err" || { echo "FAIL $mech floor message"; fail=1; }
  out=$(echo "hello $mech" | "$tool" connect "127.0.0.1:$port" --auth "$mech" --user alice \
        --password-file "$work/right" --kdf-floor test 2>"$work/c.err"); code=$?
  check "$mech right password" 0 "$code"
  [ "$out" = "hello $mech" ] || { echo "FAIL $mech echo: '$out'"; fail=1; }
  grep -q "authenticated: server=127.0.0.1 mechanism=$mech" "$work/c.err" || { echo "FAIL $mech client identity"; fail=1; }
  echo x | "$tool" connect "127.0.0.1:$port" --auth "$mech" --user alice \
        --password-file "$work/wrong" --kdf-floor test >/dev/null 2>&1; check "$mech wrong password" 5 $?
  echo x | "$tool" connect "127.0.0.1:$port" --auth "$mech" --user mallory \
        --password-file "$work/right" --kdf-floor test >/dev/null 2>&1; check "$mech unknown user" 5 $?
  echo x | "$tool" connect "127.0.0.1:$port" >/dev/null 2>&1; check "$mech no --auth" 3 $?
  sleep 0.1
  grep -q "authenticated: user=alice mechanism=$mech" "$work/$mech.err" || { echo "FAIL $mech server identity"; fail=1; }
done

start x509 --auth x509 --cert "$work/pki/server.pem" --key "$work/pki/server.key"
out=$(echo "hello x509" | "$tool" connect "localhost:$port" --auth x509 --ca "$work/pki/ca.pem" 2>/dev/null); code=$?
check "x509 right host" 0 "$code"
[ "$out" = "hello x509" ] || { echo "FAIL x509 echo"; fail=1; }
echo x | "$tool" connect "127.0.0.1:$port" --auth x509 --ca "$work/pki/ca.pem" \
     --server-name evil.example >/dev/null 2>&1; check "x509 wrong host" 5 $?

start both --auth x509+cmac --users "$work/u.db" --cert "$work/pki/server.pem" --key "$work/pki/server.key"
echo x | "$tool" connect "localhost:$port" --auth x509+cmac --ca "$work/pki/ca.pem" --user alice \
     --password-file "$work/right" --kdf-floor test >/dev/null 2>&1; check "x509+cmac" 0 $?

# Downgrade: a CMAC-only server answering an x509+cmac client is refused
# (the client requires the certificate), naming what was missing.
start cmaconly --auth cmac --users "$work/u.db"
echo x | "$tool" connect "localhost:$port" --auth x509+cmac --ca "$work/pki/ca.pem" --user alice \
     --password-file "$work/right" --kdf-floor test >/dev/null 2>"$work/down.err"
check "x509+cmac client, cmac-only server" 5 $?
grep -q "does not include a server certificate" "$work/down.err" || { echo "FAIL downgrade message"; fail=1; }

# A server with an explicit realm refuses a client naming another one.
start realm --auth pake --users "$work/u.db" --realm localhost
echo x | "$tool" connect "127.0.0.1:$port" --auth pake --user alice \
     --password-file "$work/right" --kdf-floor test >/dev/null 2>&1; check "realm mismatch" 5 $?
echo x | "$tool" connect "127.0.0.1:$port" --auth pake --user alice --realm localhost \
     --password-file "$work/right" --kdf-floor test >/dev/null 2>&1; check "explicit realm" 0 $?

# samples/cli/file_transfer: a 1 MiB file over SPAKE2+, byte for byte.
if [ -n "$sample" ]; then
  head -c 1048576 /dev/urandom >"$work/file.bin"
  "$sample" receive --port 0 --auth pake --users "$work/u.db" --out "$work/got.bin" \
    2>"$work/ft.err" &
  pids+=($!); rpid=$!
  for _ in $(seq 1 100); do grep -q "listening on port" "$work/ft.err" 2>/dev/null && break; sleep 0.05; done
  ftport=$(sed -n 's/listening on port //p' "$work/ft.err")
  "$sample" send 127.0.0.1 "$ftport" "$work/file.bin" --auth pake --user alice \
    --password-file "$work/right" --kdf-floor test 2>/dev/null; check "file_transfer send" 0 $?
  wait "$rpid"; check "file_transfer receive" 0 $?
  cmp -s "$work/file.bin" "$work/got.bin"; check "file_transfer content" 0 $?
  grep -q "from: alice" "$work/ft.err" || { echo "FAIL file_transfer identity"; fail=1; }
fi

if [ $fail = 0 ]; then echo "cli_auth_test: all passed"; fi
exit $fail
