#!/bin/bash
# t/provider/route_cert.sh - the gateway side of the enrolment with the real
# programs: regigatectl route cert-request / cert-import / status /
# check-provider against a real regigate-provider (init, serve, gateway
# add / sign / remove). Certificates of another CA, for another key,
# expired, or garbage are refused by cert-import and nothing is installed;
# a removed gateway fails check-provider. Prints TAP.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/t/integration/lib.sh"

PROVIDER=${REGIGATE_PROVIDER:-$top_builddir/src/regigate-provider/regigate-provider}
CTL=${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}

need openssl
[ -x "$PROVIDER" ] || skip_all "$PROVIDER not built"
[ -x "$CTL" ] || skip_all "$CTL not built"

plan 40

cd "$T_DIR" || exit 1
PORT=$(free_port)
cat > p.conf <<EOF
[provider]
listen = 127.0.0.1:$PORT
data_dir = $T_DIR/data
threads = 2
EOF
rgp() { "$PROVIDER" -c p.conf "$@"; }
mode() { stat -c %a "$1"; }

CERTS=$T_DIR/routes/out          # does not exist yet: cert-request creates it
cat > regigate.conf <<EOF
[global]
myhostname = gw.example.test
spool_dir = $T_DIR/spool
pid_file = $T_DIR/regigated.pid

[route out]
listen = 127.0.0.1:$(free_port)
reinject = 127.0.0.1:$(free_port)
provider = https://localhost:$PORT
provider_ca = $T_DIR/data/ca.crt
cert_dir = $CERTS
provider_connect_timeout = 5
provider_timeout = 10

[route kc]
listen = 127.0.0.1:$(free_port)
reinject = 127.0.0.1:$(free_port)
provider = localhost:$PORT
provider_ca = $T_DIR/data/ca.crt
cert_dir = $T_DIR/kc
provider_key = $T_DIR/kc/key_cert.pem
provider_cert = $T_DIR/kc/key_cert.pem

[route noprovider]
listen = 127.0.0.1:$(free_port)
reinject = 127.0.0.1:$(free_port)
cert_dir = $T_DIR/routes/noprovider
EOF
ctl() { "$CTL" -c regigate.conf "$@"; }

# ---- the provider -------------------------------------------------------
rgp init > init.out 2>&1
ok $? "regigate-provider init"
"$PROVIDER" -c p.conf serve > serve.log 2>&1 &
track $!
wait_port "$PORT" 10
ok $? "regigate-provider serve listens"
GW=$(rgp gateway add --ip 127.0.0.1 --description "route out")
[ -n "$GW" ]
ok $? "gateway add: id $GW"

# ---- before: the certificate is needed ----------------------------------
ctl route status out > st0.out 2>&1
[ $? -eq 0 ] && grep -qx "certificate: Needed (no certificate installed in $CERTS/provider.crt)" st0.out \
    && grep -qx "provider: https://localhost:$PORT" st0.out && grep -qx "protocol: smtp" st0.out
ok $? "route status: certificate Needed" || diag "$(cat st0.out)"
ctl route check-provider out > chk0.out 2>&1
[ $? -eq 1 ] && grep -q "^FAILED: route out has no certificate" chk0.out
ok $? "check-provider without a certificate fails" || diag "$(cat chk0.out)"
ctl route cert-import out < /dev/null > imp0.out 2>&1
[ $? -eq 1 ] && grep -q "has no key yet" imp0.out
ok $? "cert-import before cert-request: no key yet" || diag "$(cat imp0.out)"

# ---- cert-request -------------------------------------------------------
ctl route cert-request out > req.csr 2> req.err
ok $? "route cert-request" || diag "$(cat req.err)"
[ -f "$CERTS/provider.key" ] && [ "$(mode "$CERTS/provider.key")" = 600 ] && [ "$(mode "$CERTS")" = 700 ]
ok $? "the key is created mode 0600 in cert_dir, mode 0700"
openssl pkey -in "$CERTS/provider.key" -noout -text 2>/dev/null | grep -q "NIST CURVE: P-256"
ok $? "the key is EC P-256"
openssl req -in req.csr -noout -verify > verify.out 2>&1
ok $? "the request verifies (openssl req -verify)" || diag "$(cat verify.out)"
openssl req -in req.csr -noout -subject -nameopt RFC2253 | grep -qx "subject=CN=out" \
    && openssl req -in req.csr -noout -text | grep -q "DNS:gw.example.test"
ok $? "CN is the route's name, the host's name is a subjectAltName"
cmp -s req.csr "$CERTS/provider.csr"
ok $? "the request is also in cert_dir/provider.csr"
[ "$(openssl req -in req.csr -noout -pubkey)" = "$(openssl pkey -in "$CERTS/provider.key" -pubout)" ]
ok $? "the request carries the route's key"
! grep -q "PRIVATE KEY" req.csr req.err
ok $? "the key is not printed"
cp "$CERTS/provider.key" key.before
ctl route cert-request out --cn "gw.example.test" --san mx.example.test --san 192.0.2.25 > req2.csr 2> req2.err
ok $? "cert-request with --cn and --san" || diag "$(cat req2.err)"
cmp -s key.before "$CERTS/provider.key" && ! grep -q "created a new key" req2.err
ok $? "an existing key is kept"
openssl req -in req2.csr -noout -text > req2.txt
grep -q "CN *= *gw.example.test" req2.txt && grep -q "DNS:mx.example.test" req2.txt \
    && grep -q "IP Address:192.0.2.25" req2.txt && ! grep -q "DNS:gw.example.test" req2.txt
ok $? "--cn and --san replace the defaults (DNS and IP names)"
ctl route cert-request out --san "bad name" > /dev/null 2> req3.err
[ $? -eq 1 ] && grep -q "neither a DNS name nor an IP address" req3.err
ok $? "a bad --san is refused"

# ---- refused certificates -----------------------------------------------
# another CA, signing a certificate for the route's own key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key \
    -subj /CN=other-ca -days 30 -out other-ca.crt 2>/dev/null
printf 'extendedKeyUsage = clientAuth\n' > ext.cnf
openssl x509 -req -in req.csr -CA other-ca.crt -CAkey other-ca.key -CAcreateserial -days 30 \
    -extfile ext.cnf -out other.crt 2>/dev/null
ctl route cert-import out < other.crt > imp1.out 2>&1
[ $? -eq 1 ] && grep -q "certificate refused: the certificate does not chain to the provider CA" imp1.out \
    && [ ! -e "$CERTS/provider.crt" ]
ok $? "a certificate from another CA is refused, nothing installed" || diag "$(cat imp1.out)"
# the provider's CA, but for another key
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout otherkey.key \
    -subj /CN=out -out otherkey.csr 2>/dev/null
rgp gateway sign "$GW" < otherkey.csr > otherkey.crt 2>/dev/null
ctl route cert-import out < otherkey.crt > imp2.out 2>&1
[ $? -eq 1 ] && grep -q "certificate refused: the certificate is not for this route's key" imp2.out \
    && [ ! -e "$CERTS/provider.crt" ]
ok $? "a certificate for another key is refused" || diag "$(cat imp2.out)"
# the right key and CA, but expired (--days 0)
rgp gateway sign "$GW" --days 0 < req.csr > expired.crt 2>/dev/null
sleep 1
ctl route cert-import out < expired.crt > imp3.out 2>&1
[ $? -eq 1 ] && grep -q "certificate refused: the certificate expired on" imp3.out
ok $? "an expired certificate is refused" || diag "$(cat imp3.out)"
# right key, right CA, but only serverAuth
printf 'extendedKeyUsage = serverAuth\n' > ext2.cnf
openssl x509 -req -in req.csr -CA data/ca.crt -CAkey data/ca.key -CAcreateserial -days 30 \
    -extfile ext2.cnf -out srvonly.crt 2>/dev/null
ctl route cert-import out < srvonly.crt > imp4.out 2>&1
[ $? -eq 1 ] && grep -q "does not include clientAuth" imp4.out
ok $? "a certificate without clientAuth usage is refused" || diag "$(cat imp4.out)"
echo "not a certificate" | ctl route cert-import out > imp5.out 2>&1
[ $? -eq 1 ] && grep -q "no PEM certificate found" imp5.out
ok $? "garbage is refused" || diag "$(cat imp5.out)"
ctl route cert-import out < /dev/null > imp6.out 2>&1
[ $? -eq 1 ] && grep -q "empty input" imp6.out
ok $? "empty input is refused" || diag "$(cat imp6.out)"
[ ! -e "$CERTS/provider.crt" ] && [ -z "$(ls "$CERTS" | grep tmp)" ]
ok $? "nothing installed, no temporary files left"

# ---- sign and import ----------------------------------------------------
rgp gateway sign "$GW" < req.csr > signed.crt 2> sign.err
ok $? "regigate-provider gateway sign" || diag "$(cat sign.err)"
ctl route cert-import out < signed.crt > imp.out 2>&1
[ $? -eq 0 ] && grep -q "^route out: certificate installed in $CERTS/provider.crt (CN=out, expires " imp.out
ok $? "route cert-import installs the signed certificate" || diag "$(cat imp.out)"
[ "$(mode "$CERTS/provider.crt")" = 600 ] && cmp -s signed.crt "$CERTS/provider.crt"
ok $? "the installed certificate is mode 0600 and the one signed"
ctl route status out > st1.out 2>&1
grep -Eqx "certificate: Done \(CN=out, expires [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC\)" st1.out
ok $? "route status: certificate Done" || diag "$(cat st1.out)"
ctl route check-provider out > chk1.out 2>&1
[ $? -eq 0 ] && grep -qx "OK: https://localhost:$PORT accepts route out as gateway $GW" chk1.out
ok $? "route check-provider: OK" || diag "$(cat chk1.out)"
ctl route status > stall.out 2>&1
[ $? -eq 0 ] && grep -qx "route: noprovider" stall.out && grep -qx "provider: none" stall.out
ok $? "route status without a route shows every route" || diag "$(cat stall.out)"
ctl route check-provider noprovider > chk2.out 2>&1
[ $? -eq 1 ] && grep -q "^FAILED: route noprovider has no provider" chk2.out
ok $? "check-provider of a route without provider fails" || diag "$(cat chk2.out)"
ctl route status nosuch > st2.out 2>&1
[ $? -eq 1 ] && grep -q "no route 'nosuch'" st2.out
ok $? "an unknown route is an error"

# a refused import later leaves the installed certificate alone
ctl route cert-import out < other.crt > /dev/null 2>&1
cmp -s signed.crt "$CERTS/provider.crt"
ok $? "a refused import keeps the installed certificate"
# the installed certificate expires: status says Needed again
cp "$CERTS/provider.crt" good.crt
cp expired.crt "$CERTS/provider.crt"
ctl route status out > st3.out 2>&1
grep -q "^certificate: Needed (the certificate expired on" st3.out
ok $? "status of an expired installed certificate: Needed" || diag "$(cat st3.out)"
cp good.crt "$CERTS/provider.crt"

# one key_cert.pem holding both: the import keeps the key in front
ctl route cert-request kc > kc.csr 2> kc.err && rgp gateway sign "$GW" < kc.csr > kc.crt 2>/dev/null \
    && ctl route cert-import kc < kc.crt > kc-imp.out 2>&1
ok $? "key_cert.pem route: request, sign, import" || diag "$(cat kc.err kc-imp.out)"
[ "$(mode kc/key_cert.pem)" = 600 ] && grep -q "PRIVATE KEY" kc/key_cert.pem \
    && [ "$(openssl x509 -in kc/key_cert.pem -noout -pubkey)" = "$(openssl pkey -in kc/key_cert.pem -pubout)" ]
ok $? "key_cert.pem keeps the key and holds the matching certificate"
ctl route check-provider kc > kc-chk.out 2>&1
[ $? -eq 0 ] && grep -qx "OK: https://localhost:$PORT accepts route kc as gateway $GW" kc-chk.out
ok $? "check-provider with one key_cert.pem: OK" || diag "$(cat kc-chk.out)"

# ---- removal ------------------------------------------------------------
rgp gateway remove "$GW" > /dev/null 2>&1
ctl route check-provider out > chk3.out 2>&1
[ $? -eq 1 ] && grep -q "^FAILED: https://localhost:$PORT: gateway not accepted by the provider" chk3.out \
    && grep -q "HTTP 403 gateway_removed" chk3.out
ok $? "after gateway remove, check-provider fails (403 gateway_removed)" || diag "$(cat chk3.out)"
# the provider down: a failure too, quickly
t_stop_pid "${T_PIDS[0]}"
ctl route check-provider out > chk4.out 2>&1
[ $? -eq 1 ] && grep -q "^FAILED: https://localhost:$PORT: provider temporarily unavailable" chk4.out
ok $? "with the provider down, check-provider fails" || diag "$(cat chk4.out)"

t_done
