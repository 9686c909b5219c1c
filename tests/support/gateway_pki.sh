#!/bin/sh
# A made-up PKI for tests/gateway.rs and benches/gateway.sh, made with the openssl command in DIR:
#   server-ca.pem        signs gateway.pem (IP 127.0.0.1, what kiosks trust with api.ca_file) and vendor.pem
#                        (lapis.test, the vendor's TLS front the gateway forwards to)
#   kiosk-ca.pem/.crl    the bank's kiosk CA and its CRL; kiosk-1 (good), revoked (in the CRL), bench-N (KIOSKS=N)
#   stranger.pem/.key    a kiosk certificate (same subject as kiosk-1) from another CA
# Each kiosk's key is made next to its CSR, as `openssl req -new` on a kiosk would (README: enrolling a kiosk).
# usage: gateway_pki.sh DIR
set -eu
D=$1; mkdir -p "$D/newcerts"; cd "$D"
q() { "$@" >/dev/null 2>&1; }
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
q openssl req -x509 $ec -keyout server-ca.key -out server-ca.pem -days 2 -subj "/CN=Test Server CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
srv() { # name san
  q openssl req -new $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$1"
  printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$2" > "$1.ext"
  q openssl x509 -req -in "$1.csr" -CA server-ca.pem -CAkey server-ca.key -CAcreateserial -days 1 -out "$1.pem" -extfile "$1.ext"
}
srv gateway "IP:127.0.0.1"
srv vendor "DNS:lapis.test"
q openssl req -x509 $ec -keyout kiosk-ca.key -out kiosk-ca.pem -days 2 -subj "/CN=Test Kiosk CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
: > index.txt; echo 1000 > serial; echo 1000 > crlnumber
cat > ca.cnf <<CNF
[ca]
default_ca = kioskca
[kioskca]
dir = $D
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
certificate = \$dir/kiosk-ca.pem
private_key = \$dir/kiosk-ca.key
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
policy = anything
unique_subject = no
x509_extensions = kiosk_ext
default_crl_days = 1
[anything]
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[kiosk_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF
kiosk() { # name: a key made here (as a kiosk would), a CSR, signed by the kiosk CA
  q openssl req -new $ec -keyout "$1.key" -out "$1.csr" -subj "/O=Test Bank/OU=kiosks/CN=$1"
  q openssl ca -batch -config ca.cnf -in "$1.csr" -out "$1.pem" -days 1 -notext
  chmod 600 "$1.key"
}
kiosk kiosk-1
kiosk revoked
q openssl ca -config ca.cnf -revoke revoked.pem
n=0; while [ "$n" -lt "${KIOSKS:-0}" ]; do kiosk "bench-$n"; n=$((n+1)); done
q openssl ca -config ca.cnf -gencrl -out kiosk-ca.crl
# A kiosk certificate from another CA.
q openssl req -x509 $ec -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=Other CA" -addext basicConstraints=critical,CA:TRUE
q openssl req -new $ec -keyout stranger.key -out stranger.csr -subj "/O=Test Bank/OU=kiosks/CN=kiosk-1"
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n' > client.ext
q openssl x509 -req -in stranger.csr -CA other-ca.pem -CAkey other-ca.key -CAcreateserial -days 1 -out stranger.pem -extfile client.ext
chmod 600 stranger.key
