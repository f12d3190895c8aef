#!/bin/bash
# t/provider/enrol.sh - enrol a gateway end to end with the real programs:
# regigate-provider init, gateway add, regigate-makecert (key + CSR),
# gateway sign, then HTTPS requests with the signed certificate (curl);
# weak and forged requests refused, a certificate of another CA refused, a
# removed gateway refused, protocol errors with their documented codes.
# Prints TAP.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/t/integration/lib.sh"

PROVIDER=${REGIGATE_PROVIDER:-$top_builddir/src/regigate-provider/regigate-provider}
MAKECERT=${REGIGATE_MAKECERT:-$top_builddir/src/regigate-makecert/regigate-makecert}

need curl openssl
[ -x "$PROVIDER" ] || skip_all "$PROVIDER not built"
[ -x "$MAKECERT" ] || skip_all "$MAKECERT not built"

plan 32

cd "$T_DIR" || exit 1
PORT=$(free_port)
URL="https://localhost:$PORT"
cat > p.conf <<EOF
[provider]
listen = 127.0.0.1:$PORT
data_dir = $T_DIR/data
threads = 2
max_body = 4096
EOF
rgp() { "$PROVIDER" -c p.conf "$@"; }

# req NAME CERT KEY [curl args...]: HTTP status to stdout, body in NAME.out
req() {
    local name=$1 cert=$2 key=$3; shift 3
    local auth=()
    [ -n "$cert" ] && auth=(--cert "$cert" --key "$key")
    curl -sS -o "$name.out" -w '%{http_code}' --cacert data/ca.crt "${auth[@]}" \
        --max-time 10 "$@" 2>"$name.err"
}
# expect DESCRIPTION STATUS CODE NAME CERT KEY [curl args...]
expect() {
    local d=$1 st=$2 code=$3; shift 3
    local got
    got=$(req "$@")
    if [ "$got" = "$st" ] && { [ -z "$code" ] || grep -q "\"code\":\"$code\"" "$1.out"; }; then
        ok 0 "$d"
    else
        ok 1 "$d"; diag "status $got, body: $(cat "$1.out" 2>/dev/null)"
    fi
}
mode() { stat -c %a "$1"; }

# ---- the provider side: init -------------------------------------------
rgp init > init.out 2>&1
ok $? "init creates CA, master key, server certificate and database"
[ "$(mode data/ca.key)" = 600 ] && [ "$(mode data/master.key)" = 600 ] && [ "$(mode data/provider.db)" = 600 ]
ok $? "CA key, master key and database are mode 0600"
rgp init > init2.out 2>&1
[ $? -ne 0 ] && grep -q "initialised already" init2.out
ok $? "a second init refuses to overwrite anything"

GW=$(rgp gateway add --ip 127.0.0.1 --description "route inbound, Example Inc")
[ "$GW" = 1 ]
ok $? "gateway add prints the new gateway id"
rgp gateway add --ip 300.1.2.3 --description x > /dev/null 2>&1
[ $? -eq 2 ]
ok $? "gateway add refuses an address that is not an IP address"

# ---- the gateway side: key and request (regigate-makecert) -------------
"$MAKECERT" -c DE -l Frankfurt -o 'Example Inc' -n gw.example.com -a mx.example.com -P route1 2>/dev/null
[ -f route1.key ] && [ -f route1.crt ] && [ -f route1.csr ] && [ "$(mode route1.key)" = 600 ]
ok $? "makecert creates key (0600), self-signed certificate and request"
openssl req -in route1.csr -noout -verify > /dev/null 2>&1 && \
    openssl req -in route1.csr -noout -text | grep -q "DNS:mx.example.com"
ok $? "the request verifies and carries the subjectAltNames"
cp route1.key key.before
"$MAKECERT" -c DE -n gw.example.com -P route1 2>/dev/null
cmp -s key.before route1.key
ok $? "makecert keeps an existing key"

# ---- signing ------------------------------------------------------------
rgp gateway sign "$GW" < route1.csr > signed.crt 2> sign.err
ok $? "gateway sign signs the request"
openssl verify -CAfile data/ca.crt signed.crt > /dev/null 2>&1
ok $? "the signed certificate chains to the provider CA"
[ "$(openssl x509 -in signed.crt -noout -pubkey)" = "$(openssl pkey -in route1.key -pubout)" ]
ok $? "the signed certificate matches the gateway's key"

openssl req -new -newkey rsa:1024 -nodes -keyout weak.key -subj /CN=weak -out weak.csr 2>/dev/null
rgp gateway sign "$GW" < weak.csr > weak.crt 2> weak.err
[ $? -ne 0 ] && grep -q "weak key" weak.err && [ ! -s weak.crt ]
ok $? "a request with an RSA 1024 key is refused"
openssl req -in route1.csr -outform DER -out forged.der 2>/dev/null
size=$(stat -c %s forged.der)
last=$(od -An -tu1 -j $((size - 1)) forged.der | tr -d ' ')
printf "\\$(printf %03o $(((last + 1) % 256)))" | dd of=forged.der bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
openssl req -inform DER -in forged.der -out forged.csr 2>/dev/null
rgp gateway sign "$GW" < forged.csr > forged.crt 2> forged.err
[ $? -ne 0 ] && grep -q "does not verify" forged.err
ok $? "a request whose signature does not verify is refused"
echo "not a request" | rgp gateway sign "$GW" > /dev/null 2>&1
[ $? -ne 0 ]
ok $? "garbage instead of a request is refused"
rgp gateway sign 99 < route1.csr > /dev/null 2>&1
[ $? -ne 0 ]
ok $? "signing for an unknown gateway is refused"

rgp account add alice@example.com bob@example.org
ok $? "account add"

# ---- requests with the certificate -------------------------------------
"$PROVIDER" -c p.conf serve > serve.log 2>&1 &
track $!
wait_port "$PORT" 10
ok $? "regigate-provider serve listens"

expect "health with the signed certificate" 200 "" health signed.crt route1.key "$URL/v1/health"
grep -q '"gateway":1' health.out
ok $? "the provider knows the gateway by its id"
cat route1.key signed.crt > key_cert.pem
expect "one key_cert.pem file works as well" 200 "" kc key_cert.pem key_cert.pem "$URL/v1/accounts/alice@example.com"
expect "no client certificate: 401" 401 certificate_required nocert "" "" "$URL/v1/health"
expect "the self-signed certificate (another CA): 401" 401 certificate_invalid rogue route1.crt route1.key "$URL/v1/health"
expect "a CA-signed certificate without clientAuth (the server's own): 401" 401 certificate_invalid \
    srvcert data/server.crt data/server.key "$URL/v1/health"
req tls11 signed.crt route1.key --tls-max 1.1 "$URL/v1/health" > /dev/null
[ $? -ne 0 ]
ok $? "TLS 1.1 is refused"

# protocol errors: each with its documented status and code, no change
SHA=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
expect "malformed JSON: 400" 400 malformed_json bad signed.crt route1.key \
    -H 'Content-Type: application/json' --data-binary '{"sender":' "$URL/v1/transactions"
expect "wrong content type: 415" 415 unsupported_media_type ct signed.crt route1.key \
    -H 'Content-Type: text/plain' --data-binary '{}' "$URL/v1/transactions"
head -c 5000 /dev/zero | tr '\0' ' ' > big.json
expect "body over max_body: 413" 413 body_too_large big signed.crt route1.key \
    -H 'Content-Type: application/json' --data-binary @big.json "$URL/v1/transactions"
expect "sender without account: 422" 422 sender_no_account nosender signed.crt route1.key \
    -H 'Content-Type: application/json' \
    --data-binary "{\"sender\":\"eve@example.com\",\"recipients\":[\"bob@example.org\"],\"message_id\":\"\",\"sha256\":\"$SHA\"}" \
    "$URL/v1/transactions"
if command -v sqlite3 > /dev/null 2>&1; then
    n=$(sqlite3 data/provider.db "SELECT count(*) FROM transactions; SELECT count(*) FROM events;" | tr '\n' ' ')
    [ "$n" = "0 0 " ]
    ok $? "the rejected requests changed nothing in the database"
else
    T_NUM=$((T_NUM + 1)); echo "ok $T_NUM - database unchanged # SKIP sqlite3 not installed"
fi
expect "create a transaction: 201" 201 "" create signed.crt route1.key \
    -H 'Content-Type: application/json' \
    --data-binary "{\"sender\":\"alice@example.com\",\"recipients\":[\"bob@example.org\"],\"message_id\":\"<1@x>\",\"sha256\":\"$SHA\"}" \
    "$URL/v1/transactions"

# ---- removal ------------------------------------------------------------
rgp gateway remove "$GW" > /dev/null
expect "after gateway remove the certificate is refused at once" 403 gateway_removed removed signed.crt route1.key "$URL/v1/health"
rgp gateway list | grep -q "^1	.*removed="
ok $? "gateway list shows the gateway as removed"

t_done
