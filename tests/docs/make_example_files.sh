#!/usr/bin/env bash
# make_example_files.sh CLI DIR: the files the docs/examples programs take
# (ctest fixture ExampleFilesSetup).
#
#   DIR/{pake,cmac,policies}.db   users files with alice / "correct horse"
#                                 in realm 127.0.0.1 (the host the examples
#                                 dial), made with the tcpcrypt CLI at the
#                                 default (interactive) cost, which the
#                                 examples' clients accept by default
#   DIR/ca.pem                    a self-signed ECDSA P-256 CA
#   DIR/server.pem, server.key    a leaf for DNS:localhost and IP:127.0.0.1
#                                 (digitalSignature, serverAuth), made with
#                                 the openssl command
set -euo pipefail
cli=$1
dir=$2
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"

printf 'correct horse\n' >password.txt
chmod 600 password.txt  # the CLI refuses password files others can read
for db in pake cmac policies; do
  "$cli" user add alice --users "$db.db" --realm 127.0.0.1 --password-file password.txt
done
rm password.txt

cat >pki.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -new -x509 -config pki.cnf -extensions ca -key ca.key -subj "/CN=Example CA" \
  -days 2 -out ca.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
openssl req -new -config pki.cnf -key server.key -subj "/CN=localhost" -out server.csr
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile pki.cnf -extensions leaf -out server.pem 2>/dev/null
rm -f server.csr ca.srl
echo "made $(ls | tr '\n' ' ')in $dir"
