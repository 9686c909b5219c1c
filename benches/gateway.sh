#!/bin/sh
# The bank's gateway under load (issue #13), run by hand, not in CI: BENCH_KIOSKS simulated kiosks (50), each with
# its own certificate from the kiosk CA, each sending BENCH_ROUNDS applications (E1 document, E2 face, E4 request)
# at once through one gateway (the shipped files in assets/deploy/gateway, nginx) to the project's sandbox; then the
# same load sent directly to the vendor's TLS front with the key, as kiosks did before the gateway. Prints the
# throughput, p50/p99 latency per call and the gateway's CPU per request.
#
# Set-up as in tests/gateway.rs: tests/support/gateway_pki.sh makes the certificates, tests/support/gateway_conf.sh
# the nginx prefix; one nginx runs the gateway and a TLS front standing in for the vendor (the sandbox speaks plain
# HTTP on loopback), so "direct" also pays for TLS. The gateway's CPU is nginx's CPU in the gateway run minus its CPU
# in the direct run (the front's share), per gateway request. Each kiosk is a shell loop of curl calls.
#
# Needs nginx (nginx-light), openssl, curl, python3 (to build the JSON bodies). BENCH_BIN: the ekyc-kiosk binary
# (default: `cargo build --bin ekyc-kiosk`, dev profile with optimised dependencies, in $CARGO_TARGET_DIR or target).
set -eu

KIOSKS=${BENCH_KIOSKS:-50}
ROUNDS=${BENCH_ROUNDS:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ -z "${BENCH_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -q --bin ekyc-kiosk)
  BENCH_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/ekyc-kiosk
fi
W=$(mktemp -d)
SB_PID=""
cleanup() {
  [ -f "$W/run/nginx.pid" ] && kill -QUIT "$(cat "$W/run/nginx.pid")" 2>/dev/null || true
  [ -n "$SB_PID" ] && kill "$SB_PID" 2>/dev/null || true
  sleep 0.5
  [ -n "${BENCH_KEEP:-}" ] && echo "kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT INT TERM

KEY="bench-vendor-key-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
base=$((20000 + $$ % 20000))
GW=$base; VP=$((base + 1)); SB=$((base + 2))

echo "gateway bench: $KIOSKS kiosks x $ROUNDS applications; $(nproc) CPUs, $(uname -r), $(date -u +%F)" >&2
KIOSKS=$KIOSKS sh "$ROOT/tests/support/gateway_pki.sh" "$W/pki"
sh "$ROOT/tests/support/gateway_conf.sh" "$ROOT/assets/deploy/gateway" "$W/pki" "$W/run" $GW $VP $SB "$KEY"
# Daemonised here (the tests run it in the foreground); the pid file is in the prefix.
sed -i 's/^daemon off;/daemon on;/; s/^worker_processes 1;/worker_processes auto;/' "$W/run/nginx.conf"
EKYC_DATA_DIR="$W/sandbox" EKYC_SANDBOX_MAX_CONNECTIONS=128 EKYC_SANDBOX_VALIDATION_DELAY=0s RUST_LOG=error \
  "$BENCH_BIN" --demo sandbox --listen 127.0.0.1:$SB --api-key "$KEY" >"$W/sandbox.log" 2>&1 &
SB_PID=$!
"$NGINX" -p "$W/run" -c "$W/run/nginx.conf"
sleep 1

python3 - "$ROOT/assets/demo" "$W" <<'EOF'
import base64, json, sys
demo, w = sys.argv[1], sys.argv[2]
b = lambda n: base64.b64encode(open(f"{demo}/{n}", "rb").read()).decode()
json.dump({"frontImage_base64": b("id-front.jpg"), "backImage_base64": b("id-back.jpg")}, open(f"{w}/doc.json", "w"))
open(f"{w}/face.b64", "w").write(b("face.jpg"))
EOF

# One kiosk: MODE (gateway|direct) and its number.
cat >"$W/kiosk.sh" <<'EOF'
#!/bin/sh
set -u
mode=$1; i=$2; W=$3; ROUNDS=$4; GW=$5; VP=$6; KEY=$7
if [ "$mode" = gateway ]; then
  set -- --cacert "$W/pki/server-ca.pem" --cert "$W/pki/bench-$i.pem" --key "$W/pki/bench-$i.key"; url=https://127.0.0.1:$GW
else
  set -- --cacert "$W/pki/server-ca.pem" --resolve lapis.test:$VP:127.0.0.1 -H "x-api-key: $KEY"; url=https://lapis.test:$VP
fi
log=$W/lat-$mode-$i.txt
r=0
while [ "$r" -lt "$ROUNDS" ]; do
  curl -s -o "$W/resp-$mode-$i" -w "document %{http_code} %{time_total}\n" "$@" -H 'content-type: application/json' \
    --data-binary "@$W/doc.json" "$url/api/document-authentication" >>"$log"
  id=$(grep -o '"documentIdentificationId":"[^"]*"' "$W/resp-$mode-$i" | cut -d'"' -f4)
  { printf '{"documentIdentificationId":"%s","faceImage_base64":"' "$id"; cat "$W/face.b64"; printf '"}'; } >"$W/face-$mode-$i.json"
  curl -s -o /dev/null -w "face %{http_code} %{time_total}\n" "$@" -H 'content-type: application/json' \
    --data-binary "@$W/face-$mode-$i.json" "$url/api/face-authentication" >>"$log"
  m=0; [ "$mode" = gateway ] && m=1
  printf '{"email":"k%s.r%s.m%s@bench.example","phoneNumber":"4479%d%03d%02d","documentIdentificationId":"%s"}' \
    "$i" "$r" "$m" "$m" "$i" "$r" "$id" >"$W/req-$mode-$i.json"
  curl -s -o /dev/null -w "request %{http_code} %{time_total}\n" "$@" -H 'content-type: application/json' \
    --data-binary "@$W/req-$mode-$i.json" "$url/api/kyc-request" >>"$log"
  r=$((r + 1))
done
EOF

nginx_cpu() { # utime + stime of every nginx process of this prefix, in clock ticks
  master=$(cat "$W/run/nginx.pid")
  for p in $master $(pgrep -P "$master"); do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}'
}

run() { # mode
  before=$(nginx_cpu); t0=$(date +%s.%N)
  i=0; pids=""
  while [ "$i" -lt "$KIOSKS" ]; do
    sh "$W/kiosk.sh" "$1" "$i" "$W" "$ROUNDS" $GW $VP "$KEY" &
    pids="$pids $!"
    i=$((i + 1))
  done
  for p in $pids; do wait "$p" || true; done
  t1=$(date +%s.%N); after=$(nginx_cpu)
  cat "$W"/lat-"$1"-*.txt >"$W/all-$1.txt"
  apps=$(grep -c '^request 201' "$W/all-$1.txt" || true)
  calls=$(wc -l <"$W/all-$1.txt")
  bad=$(grep -vc ' 20[01] ' "$W/all-$1.txt" || true)
  secs=$(echo "$t1 $t0" | awk '{printf "%.2f", $1 - $2}')
  echo "$1 $apps $calls $bad $secs $((after - before))" >"$W/sum-$1.txt"
}

pct() { # file endpoint-or-all p
  if [ "$2" = all ]; then awk '{print $3}' "$1"; else awk -v e="$2" '$1 == e {print $3}' "$1"; fi | sort -n |
    awk -v p="$3" '{v[NR] = $1} END {i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; printf "%.0f", v[i] * 1000}'
}

run direct
run gateway
hz=$(getconf CLK_TCK)
printf '| path | applications done / sent | calls failed | wall | applications/s | p50 / p99 all calls (ms) | p50 / p99 document | p50 / p99 face | p50 / p99 request | nginx CPU |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for m in direct gateway; do
  read -r _ apps calls bad secs ticks <"$W/sum-$m.txt"
  f=$W/all-$m.txt
  printf '| %s | %s / %s | %s of %s | %s s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %s ms |\n' "$m" "$apps" \
    $((KIOSKS * ROUNDS)) "$bad" "$calls" "$secs" "$(echo "$apps $secs" | awk '{printf "%.1f", $1 / $2}')" \
    "$(pct "$f" all 50)" "$(pct "$f" all 99)" "$(pct "$f" document 50)" "$(pct "$f" document 99)" \
    "$(pct "$f" face 50)" "$(pct "$f" face 99)" "$(pct "$f" request 50)" "$(pct "$f" request 99)" \
    "$(echo "$ticks $hz" | awk '{printf "%.0f", $1 * 1000 / $2}')"
done
read -r _ _ _ _ _ dt <"$W/sum-direct.txt"
read -r _ _ gcalls _ _ gt <"$W/sum-gateway.txt"
echo "$gt $dt $hz $gcalls" | awk '{printf "gateway CPU per request: %.2f ms (nginx CPU with the gateway minus without, over %d calls)\n", ($1 - $2) * 1000 / $3 / $4, $4}'
