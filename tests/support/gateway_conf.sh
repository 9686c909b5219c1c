#!/bin/sh
# An nginx prefix RUN holding the shipped gateway files (assets/deploy/gateway) as they are, the site-specific
# examples with only their addresses and paths replaced, and a stand-in for the vendor's TLS front (the sandbox
# speaks plain HTTP on loopback, so this nginx also terminates TLS for it: the gateway forwards over TLS, verified,
# as it does in production). Runs unprivileged-style: pid, logs and temp files in RUN, `daemon off`.
# usage: gateway_conf.sh ASSETS PKI RUN GATEWAY_PORT VENDOR_TLS_PORT SANDBOX_PORT VENDOR_KEY
set -eu
A=$1; P=$2; R=$3; GW=$4; VP=$5; SB=$6; KEY=$7
mkdir -p "$R/conf.d" "$R/ekyc-gateway" "$R/tmp" "$R/logs"
cp "$A/conf.d/ekyc-gateway.conf" "$R/conf.d/"
cp "$A/ekyc-gateway/kiosk-call.conf" "$R/ekyc-gateway/"
sed -e "s#10.20.30.40:8443#127.0.0.1:$GW#" -e "s#/etc/ekyc-gateway/gateway#$P/gateway#" -e "s#/etc/ekyc-gateway/kiosk-ca#$P/kiosk-ca#" \
    -e "s#kyc-be.rubilink.app#lapis.test#" -e "s#/etc/ssl/certs/ca-certificates.crt#$P/server-ca.pem#" -e "s#/var/log/nginx/#$R/logs/#" \
    "$A/ekyc-gateway/site.conf.example" > "$R/ekyc-gateway/site.conf"
echo "server 127.0.0.1:$VP;" > "$R/ekyc-gateway/upstream.conf"
install -m 600 /dev/null "$R/ekyc-gateway/api-key.conf"
sed "s#REPLACE-WITH-THE-LAPIS-API-KEY#$KEY#" "$A/ekyc-gateway/api-key.conf.example" > "$R/ekyc-gateway/api-key.conf"
cat > "$R/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $R/nginx.pid;
error_log $R/logs/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 1024; }
http {
    client_body_temp_path $R/tmp/body;
    proxy_temp_path $R/tmp/proxy;
    fastcgi_temp_path $R/tmp/fastcgi;
    uwsgi_temp_path $R/tmp/uwsgi;
    scgi_temp_path $R/tmp/scgi;
    access_log $R/logs/access.log;
    include conf.d/ekyc-gateway.conf;
    # Stands in for the vendor's TLS front: the sandbox speaks plain HTTP on loopback.
    server {
        listen 127.0.0.1:$VP ssl;
        server_name lapis.test;
        ssl_certificate $P/vendor.pem;
        ssl_certificate_key $P/vendor.key;
        client_max_body_size 64m;
        location / {
            proxy_pass http://127.0.0.1:$SB;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
        }
    }
}
CONF
