#!/bin/bash
# Security review tests (issue 7): the daemon runs as the configured user
# (master and workers, read from /proc), the spool and the route's key have
# private modes (0700 / 0600, owned by that user), a key readable by others
# is refused, no secret reaches a log after a full encrypt + decrypt
# exchange with a real provider (the KEKs fetched as the gateway would,
# then every log searched), the provider's TLS certificate is always
# verified (another CA, the right CA but another name, environment
# variables naming a CA bundle: 451 each; no option turns it off), and a
# non-loopback listen address is refused unless allow_remote_listen.
# Parts that need root (the user switch, ownership) are skipped otherwise.
. "$(dirname "$0")/lib.sh"
PROVIDER=${REGIGATE_PROVIDER:-$top_builddir/src/regigate-provider/regigate-provider}
CTL=${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}
need swaks openssl curl ss
[ -x "$PROVIDER" ] || skip_all "$PROVIDER not built"
plan 29

ROOT=0; [ "$(id -u)" = 0 ] && ROOT=1
skip() { ok 0 "# SKIP $1 (not root)"; }
mode() { stat -c %a "$1"; }
owner() { stat -c %U "$1"; }

cd "$T_DIR" || exit 1
PPORT=$(free_port); ROGUE_PORT=$(free_port); WRONG_PORT=$(free_port)
OUT_PORT=$(free_port); IN_PORT=$(free_port); ROGUE_RT=$(free_port); WRONG_RT=$(free_port)
OUT_SINK=$(free_port); IN_SINK=$(free_port); X_SINK=$(free_port)
LISTEN_PORT=$OUT_PORT

# ---- a provider (verbose: every request logged), a gateway, accounts -----------
cat > p.conf <<EOF
[provider]
listen = 127.0.0.1:$PPORT
data_dir = $T_DIR/data
threads = 2
log_requests = yes
EOF
rgp() { "$PROVIDER" -c p.conf "$@"; }
rgp init > init.out 2>&1 && { "$PROVIDER" -c p.conf serve >> provider.log 2>&1 & track $!; wait_port "$PPORT" 10; } \
    && GW=$(rgp gateway add --ip 127.0.0.1 --description gw) && rgp account add alice@example.com bob@example.org > acc.out 2>&1
ok $? "provider: init, serve, gateway, accounts" || diag "$(cat init.out acc.out provider.log)"

RUNAS=; [ $ROOT = 1 ] && RUNAS="user = nobody"
cp data/ca.crt ca.crt     # data/ is the provider's, 0700
route() {   # route NAME LISTEN SINK PROVIDER-PORT RULES
    cat <<EOF

[route $1]
listen = 127.0.0.1:$2
reinject = 127.0.0.1:$3
rules = $T_DIR/$5
provider = https://localhost:$4
provider_ca = $T_DIR/ca.crt
cert_dir = $T_DIR/certs
provider_timeout = 5
provider_connect_timeout = 2
account_cache_ttl = 0
EOF
}
write_rg_conf() {
    { printf '[global]\n%s\nspool_dir = %s\npid_file = %s/regigated.pid\n' "$RUNAS" "$T_DIR/newspool" "$T_DIR"
      printf 'max_servers = 4\nmin_spare_servers = 2\nmax_spare_servers = 3\nspool_memory_limit = 4k\n'
      route out "$OUT_PORT" "$OUT_SINK" "$PPORT" out.json
      route in "$IN_PORT" "$IN_SINK" "$PPORT" in.json
      route rogue "$ROGUE_RT" "$X_SINK" "$ROGUE_PORT" out.json
      route wrongname "$WRONG_RT" "$X_SINK" "$WRONG_PORT" out.json
      printf '%s\n' "${EXTRA:-}"; } > "$1"
}
cat > out.json <<'EOR'
{ "rules": [ { "name": "secure", "action": "encrypt",
               "conditions": [ { "field": "header:Subject", "op": "contains", "value": "[secure]" } ] } ],
  "default": { "action": "forward" } }
EOR
echo '{ "default": { "action": "decrypt" } }' > in.json
write_rg_conf rg.conf

# ---- the route's key and certificate: private ------------------------------------
"$CTL" -c rg.conf route cert-request out > gw.csr 2> ctl.err && rgp gateway sign "$GW" < gw.csr > gw.crt 2>> ctl.err \
    && "$CTL" -c rg.conf route cert-import out < gw.crt > imp.out 2>> ctl.err
ok $? "the gateway's key and certificate: request, sign, import" || diag "$(cat ctl.err)"
[ "$(mode certs)" = 700 ] && [ "$(mode certs/provider.key)" = 600 ] && [ "$(mode certs/provider.crt)" = 600 ]
ok $? "cert_dir 0700, provider.key 0600, provider.crt 0600"
if [ $ROOT = 1 ]; then
    [ "$(owner certs)" = nobody ] && [ "$(owner certs/provider.key)" = nobody ]
    ok $? "... owned by the configured user (nobody), who alone can read the key"
else skip "key owned by the configured user"; fi
chmod 644 certs/provider.key
"$REGIGATED" -t -c rg.conf > t1.out 2>&1; rc=$?
[ $rc = 1 ] && grep -q "route out: provider key $T_DIR/certs/provider.key is accessible to group or others (mode 644): chmod 600 it" t1.out
ok $? "a key readable by others: regigated refuses to start (exit $rc)" || diag "$(cat t1.out)"
chmod 600 certs/provider.key
"$REGIGATED" -t -c rg.conf > t2.out 2>&1; ok $? "mode 0600 again: the configuration is accepted" || diag "$(cat t2.out)"

# ---- provider TLS: no option turns verification off -------------------------------
n=0; bad=
for kv in 'provider_insecure = yes' 'provider_verify = no' 'tls_verify = no' 'ssl_verify_peer = 0' \
          'provider_ssl_verify = no' 'provider_tls = no'; do
    EXTRA=$kv write_rg_conf x.conf
    "$REGIGATED" -t -c x.conf > x.out 2>&1 && bad="$bad [$kv]"
    grep -q 'unknown key' x.out || bad="$bad [$kv: $(cat x.out)]"
done
[ -z "$bad" ]; ok $? "no key turns TLS verification off: each candidate is an unknown key" || diag "$bad"
sed "s|^provider = https://localhost:$PPORT|provider = http://localhost:$PPORT|" rg.conf > x.conf
"$REGIGATED" -t -c x.conf > x.out 2>&1; rc=$?
[ $rc = 1 ] && grep -qi 'https' x.out; ok $? "plain http:// for the provider: refused" || diag "$(cat x.out)"
grep -v '^provider_ca' rg.conf > x.conf
"$REGIGATED" -t -c x.conf > x.out 2>&1; rc=$?
[ $rc = 1 ] && grep -q "provider_ca" x.out; ok $? "no provider_ca: refused (no fallback to the system's CAs)" || diag "$(cat x.out)"

# fake providers on 127.0.0.1: one with a certificate of another CA, one
# whose certificate the provider's CA signed for another name
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -keyout rogue.key -out rogue.crt > ossl.log 2>&1 \
 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=evil.example \
    -keyout evil.key -out evil.csr >> ossl.log 2>&1 \
 && printf 'subjectAltName=DNS:evil.example\nextendedKeyUsage=serverAuth\n' > evil.ext \
 && openssl x509 -req -in evil.csr -CA data/ca.crt -CAkey data/ca.key -CAcreateserial -days 2 \
    -extfile evil.ext -out evil.crt >> ossl.log 2>&1
ok $? "a rogue CA's certificate for localhost, and the provider CA's certificate for evil.example" || diag "$(cat ossl.log)"
openssl s_server -quiet -www -accept "127.0.0.1:$ROGUE_PORT" -cert rogue.crt -key rogue.key > s_rogue.log 2>&1 &
track $!
openssl s_server -quiet -www -accept "127.0.0.1:$WRONG_PORT" -cert evil.crt -key evil.key -CAfile data/ca.crt > s_wrong.log 2>&1 &
track $!
wait_port "$ROGUE_PORT" 5 && wait_port "$WRONG_PORT" 5

# ---- start: as the configured user ------------------------------------------------
start_testsink "$OUT_SINK" "$T_DIR/out"
start_testsink "$IN_SINK" "$T_DIR/in"
start_testsink "$X_SINK" "$T_DIR/x"
chmod 755 "$T_DIR"
# environment variables that name a CA bundle must not widen the trust
SSL_CERT_FILE=$T_DIR/rogue.crt SSL_CERT_DIR=$T_DIR CURL_CA_BUNDLE=$T_DIR/rogue.crt \
    start_regigated rg.conf && wait_port "$IN_PORT" 5 && wait_port "$WRONG_RT" 5
ok $? "regigated started (SSL_CERT_FILE, SSL_CERT_DIR, CURL_CA_BUNDLE set to the rogue CA)" || diag "$(cat regigated.log)"
sleep 0.3
if [ $ROOT = 1 ]; then
    uid=$(id -u nobody); gid=$(id -g nobody)
    kids=$(pgrep -P "$REGIGATED_PID" | tr '\n' ' ')
    bad=
    for p in "$REGIGATED_PID" $kids; do
        grep -q "^Uid:[[:space:]]*$uid[[:space:]]*$uid[[:space:]]*$uid[[:space:]]*$uid$" "/proc/$p/status" || bad="$bad $p"
        grep -q "^Gid:[[:space:]]*$gid[[:space:]]*$gid[[:space:]]*$gid[[:space:]]*$gid$" "/proc/$p/status" || bad="$bad $p"
        grep -Eq "^Groups:[[:space:]]*($gid)?[[:space:]]*$" "/proc/$p/status" || bad="$bad $p(groups)"
    done
    [ -n "$kids" ] && [ -z "$bad" ]
    ok $? "master and $(echo $kids | wc -w) workers: real, effective, saved and fs uid/gid are nobody's, no other groups" \
        || diag "bad:$bad" "$(grep -E '^(Uid|Gid|Groups)' /proc/$REGIGATED_PID/status)"
    grep -q '^CapEff:[[:space:]]*0*$' "/proc/$REGIGATED_PID/status" && grep -q '^CapPrm:[[:space:]]*0*$' "/proc/$REGIGATED_PID/status"
    ok $? "no capabilities left (CapEff and CapPrm empty)"
else skip "user switch of master and workers"; skip "capabilities"; fi
[ "$(mode newspool)" = 700 ] && { [ $ROOT = 0 ] || [ "$(owner newspool)" = nobody ]; }
ok $? "the spool directory it created: mode 0700$([ $ROOT = 1 ] && echo ', owned by nobody')"

# a message held in the middle of DATA, larger than spool_memory_limit (4k):
# its spool file is unlinked at once, mode 0600, the user's
exec 4<>"/dev/tcp/127.0.0.1/$OUT_PORT"
{ printf 'EHLO x\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: held\r\n\r\n'
  for ((i = 0; i < 300; i++)); do printf 'line %d of a message that is spooled to a file\r\n' "$i"; done; } >&4
sleep 0.5
found=
for p in $(pgrep -P "$REGIGATED_PID"); do
    for fd in /proc/"$p"/fd/*; do
        case $(readlink "$fd") in "$T_DIR/newspool/rg."*" (deleted)") found="$found $(stat -L -c '%a:%U' "$fd")";; esac
    done
done
[ -n "$found" ] && [ "${found# }" = "600:$(stat -c %U newspool)" ] && [ -z "$(spool_left newspool)" ]
ok $? "a spool file mid-transaction: already unlinked, mode and owner$found" || diag "found:$found"
printf '.\r\nQUIT\r\n' >&4; timeout 5 cat <&4 > held.out; exec 4>&-
grep -q '^250 2.0.0 Ok: forwarded' held.out; ok $? "... and the message is then relayed"

# ---- a full exchange: encrypt, decrypt, tampered -------------------------------------
kek_of() {   # kek_of TXID RECIPIENT: as the gateway asks for it
    curl -sf --cacert data/ca.crt --cert certs/provider.crt --key certs/provider.key \
        "https://localhost:$PPORT/v1/transactions/$1/key?recipient=$2" | sed -n 's/.*"kek" *: *"\([0-9a-f]*\)".*/\1/p'
}
KEKS=; TXS=
for i in 1 2; do
    rm -f out/msg-*
    swaks_to "$OUT_PORT" --from alice@example.com --to bob@example.org --header "Subject: [secure] round $i" \
        --body "the secret $i" > e$i.out 2>&1
    wait_files out 1 10 || break
    cp "$(sink_files out)" enc$i.eml
    tx=$(sed -n "s/.*action=encrypt rule=secure status=sent .* txid=\([0-9a-f]\{32\}\).*/\1/p" regigated.log | tail -1)
    TXS="$TXS $tx"; KEKS="$KEKS $(kek_of "$tx" bob@example.org)"
    swaks_to "$IN_PORT" --from alice@example.com --to bob@example.org --data "@enc$i.eml" > d$i.out 2>&1
done
set -- $KEKS
[ $# = 2 ] && [ ${#1} = 64 ] && [ ${#2} = 64 ] && [ "$1" != "$2" ]
ok $? "two messages encrypted, their KEKs fetched as the gateway does" || diag "$(tail -5 regigated.log)"
wait_files in 2 5 && grep -l 'the secret 1' in/msg-*.eml > /dev/null && grep -l 'the secret 2' in/msg-*.eml > /dev/null
ok $? "... and decrypted through the inbound route"
# a tampered copy: the failure path must not log key material either
line=$(sed -n 16p enc1.eml); c=${line:29:1}; r=A; [ "$c" = A ] && r=B
awk -v new="${line:0:29}$r${line:30}" 'NR == 16 { print new; next } { print }' enc1.eml > tampered.eml
swaks_to "$IN_PORT" --from alice@example.com --to bob@example.org --data @tampered.eml > d3.out 2>&1
sleep 0.3
log_has 'cannot decrypt' && [ "$(grep -l 'the secret 1' in/msg-*.eml | wc -l)" = 1 ]
ok $? "a tampered message: the decryption failure is logged, no plaintext delivered"

# ---- the provider's certificate is always verified -------------------------------------
swaks_to "$ROGUE_RT" --from alice@example.com --to bob@example.org --header "Subject: [secure] rogue" --body secret > r1.out 2>&1
grep -q '^<\*\* 451 4.7.0 Error: key provider' r1.out && log_has 'route=rogue .*status=deferred'
ok $? "a provider with another CA's certificate: 451 4.7.0, despite the CA variables in the environment" \
    || diag "$(grep '^<' r1.out)" "$(grep rogue regigated.log | tail -2)"
grep -Eqi 'SSL certificate problem|certificate verify failed|self.signed' regigated.log
ok $? "... logged as a certificate verification failure"
swaks_to "$WRONG_RT" --from alice@example.com --to bob@example.org --header "Subject: [secure] wrong" --body secret > w1.out 2>&1
grep -q '^<\*\* 451 4.7.0 Error: key provider' w1.out && log_has "does not match target host name|no alternative certificate subject name matches|certificate subject name"
ok $? "the provider CA's certificate for another name: 451 4.7.0 (host name checked)" \
    || diag "$(grep '^<' w1.out)" "$(grep wrongname regigated.log | tail -2)"
sleep 0.2; [ "$(sink_count x)" = 0 ]; ok $? "nothing reached the next hop of the rogue routes"

# ---- no secret in any log ------------------------------------------------------------------
t_stop_pid "$REGIGATED_PID"
LOGS=$(ls "$T_DIR"/*.log)
secrets=$KEKS
for k in $KEKS; do secrets="$secrets $(printf '%s' "$k" | xxd -r -p | base64)"; done
# the route's private key, the provider's CA key and master key, as logged bytes might show them
secrets="$secrets $(grep -v -- '-----' certs/provider.key | tr '\n' ' ') $(grep -v -- '-----' data/ca.key | tr '\n' ' ')"
[ -f data/master.key ] && secrets="$secrets $(xxd -p -c 256 data/master.key)"
leak=
for s in $secrets; do
    [ ${#s} -ge 16 ] || continue
    grep -qiF -- "$s" $LOGS && leak="$leak $s"
done
[ -n "$KEKS" ] && [ -z "$leak" ]
ok $? "no KEK (hex or base64) and no private key in any log ($(echo $LOGS | wc -w) logs, $(echo $secrets | wc -w) secrets)" \
    || diag "leaked:$leak"
[ "$(grep -c 'key retrieved for bob@example.org' provider.log)" -ge 2 ] && [ "$(grep -c 'decrypt=ok' regigated.log)" = 2 ]
ok $? "... while the logs do record the key fetches and the decryptions"

# ---- listen addresses: loopback only unless allow_remote_listen ---------------------------------
bad=
for addr in 0.0.0.0 192.0.2.10 10.1.2.3 '[::]' '[2001:db8::1]' mail.example.com; do
    printf '[global]\nspool_dir = %s\n\n[route r]\nlisten = %s:%s\nreinject = 127.0.0.1:%s\n' \
        "$T_DIR/newspool" "$addr" "$(free_port)" "$OUT_SINK" > l.conf
    "$REGIGATED" -t -c l.conf > l.out 2>&1 && bad="$bad $addr(accepted)"
    grep -q "is not a loopback address (set allow_remote_listen = yes in \[global\] to allow it)" l.out || bad="$bad $addr($(cat l.out))"
done
[ -z "$bad" ]; ok $? "0.0.0.0, 192.0.2.10, 10.1.2.3, [::], [2001:db8::1], a host name: refused" || diag "$bad"
bad=
for addr in 127.0.0.1 127.0.0.2 '[::1]' localhost; do
    printf '[global]\nspool_dir = %s\n\n[route r]\nlisten = %s:%s\nreinject = 127.0.0.1:%s\n' \
        "$T_DIR/newspool" "$addr" "$(free_port)" "$OUT_SINK" > l.conf
    "$REGIGATED" -t -c l.conf > l.out 2>&1 || bad="$bad $addr($(cat l.out))"
done
[ -z "$bad" ]; ok $? "127.0.0.1, 127.0.0.2, [::1], localhost: accepted" || diag "$bad"
p=$(free_port)
printf '[global]\nspool_dir = %s\npid_file = %s/l.pid\n\n[route r]\nlisten = 0.0.0.0:%s\nreinject = 127.0.0.1:%s\n' \
    "$T_DIR/newspool" "$T_DIR" "$p" "$OUT_SINK" > l.conf
timeout 10 "$REGIGATED" -f -c l.conf > l.out 2>&1; rc=$?
[ $rc = 1 ] && ! ss -Hltn "sport = :$p" | grep -q .
ok $? "a real start with listen = 0.0.0.0: exit 1, nothing listens" || diag "rc=$rc $(cat l.out)"
printf '[global]\nallow_remote_listen = yes\nspool_dir = %s\n\n[route r]\nlisten = 0.0.0.0:%s\nreinject = 127.0.0.1:%s\n' \
    "$T_DIR/newspool" "$p" "$OUT_SINK" > l.conf
"$REGIGATED" -t -c l.conf > l.out 2>&1
ok $? "with allow_remote_listen = yes the same address is accepted (checked with -t only)" || diag "$(cat l.out)"
t_done
