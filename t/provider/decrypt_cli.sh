#!/bin/bash
# t/provider/decrypt_cli.sh - regigatectl decrypt with the real programs: a
# real regigate-provider, a gateway enrolled with regigatectl route
# cert-request / cert-import, a transaction created with curl and the
# gateway's certificate, the message encrypted by `openssl cms` (and by
# lib/smime through t/helpers/rg-smime). Decrypting gives the original
# bytes; a recipient outside the transaction or without account, a
# tampered, truncated or foreign message give exit 1 and no output; the
# provider down gives 75. Prints TAP.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/t/integration/lib.sh"

PROVIDER=${REGIGATE_PROVIDER:-$top_builddir/src/regigate-provider/regigate-provider}
CTL=${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}
RG=${RG_SMIME:-$top_builddir/t/helpers/rg-smime}

need curl openssl sha256sum
[ -x "$PROVIDER" ] || skip_all "$PROVIDER not built"
[ -x "$CTL" ] || skip_all "$CTL not built"

plan 48

cd "$T_DIR" || exit 1
PORT=$(free_port)
URL="https://localhost:$PORT"
cat > p.conf <<EOF
[provider]
listen = 127.0.0.1:$PORT
data_dir = $T_DIR/data
threads = 2
EOF
rgp() { "$PROVIDER" -c p.conf "$@"; }

CERTS=$T_DIR/routes/in
cat > regigate.conf <<EOF
[global]
myhostname = gw.example.test
spool_dir = $T_DIR/spool
pid_file = $T_DIR/regigated.pid

[route in]
listen = 127.0.0.1:$(free_port)
reinject = 127.0.0.1:$(free_port)
provider = $URL
provider_ca = $T_DIR/data/ca.crt
cert_dir = $CERTS
provider_connect_timeout = 5
provider_timeout = 10

[route noprovider]
listen = 127.0.0.1:$(free_port)
reinject = 127.0.0.1:$(free_port)
cert_dir = $T_DIR/routes/noprovider
EOF
GWOPTS=(--provider "$URL" --ca data/ca.crt --cert "$CERTS/provider.crt" --key "$CERTS/provider.key")
# dec NAME ARGS...: regigatectl decrypt ARGS, stderr in NAME.err, exit status in $rc
dec() {
    local name=$1; shift
    "$CTL" -c regigate.conf decrypt "$@" 2> "$name.err"
    rc=$?
}
# one_error NAME REGEX: NAME.err is exactly one line, "regigatectl: " + REGEX
one_error() {
    [ "$(wc -l < "$1.err")" -eq 1 ] && grep -Eq "^regigatectl: .*$2" "$1.err"
}

# ---- provider, gateway, accounts ---------------------------------------
rgp init > init.out 2>&1
ok $? "regigate-provider init"
"$PROVIDER" -c p.conf serve > serve.log 2>&1 &
PROVIDER_PID=$!
track $PROVIDER_PID
wait_port "$PORT" 10
ok $? "regigate-provider serve listens"
GW=$(rgp gateway add --ip 127.0.0.1 --description "route in")
"$CTL" -c regigate.conf route cert-request in > req.csr 2> req.err \
    && rgp gateway sign "$GW" < req.csr > signed.crt 2> sign.err \
    && "$CTL" -c regigate.conf route cert-import in < signed.crt > imp.out 2>&1
ok $? "gateway $GW enrolled (route cert-request, gateway sign, route cert-import)" \
    || diag "$(cat req.err sign.err imp.out)"
rgp account add alice@example.com bob@example.org dave@example.org > /dev/null 2>&1
ok $? "accounts: alice (sender), bob (recipient), dave (not a recipient)"

# ---- the message and its transaction -----------------------------------
# CRLF, 8-bit headers, binary bytes, no final CRLF; long enough that the
# middle of its base64 is ciphertext
{ printf 'From: Alice <alice@example.com>\r\nTo: bob@example.org, carol@example.net\r\n'
  printf 'Subject: Gr\303\274\303\237e [secure]\r\nMessage-ID: <dec1@example.com>\r\n'
  printf 'MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n\r\n'
  head -c 30000 /dev/urandom; printf '\r\n.\r\nlast line'; } > msg.eml
SHA=$(sha256sum msg.eml | cut -c1-64)
curl -sS -o create.out -w '%{http_code}' --cacert data/ca.crt --cert "$CERTS/provider.crt" \
    --key "$CERTS/provider.key" --max-time 10 -H 'Content-Type: application/json' \
    --data-binary "{\"sender\":\"alice@example.com\",\"recipients\":[\"bob@example.org\",\"carol@example.net\"],\"message_id\":\"<dec1@example.com>\",\"sha256\":\"$SHA\"}" \
    "$URL/v1/transactions" > create.status 2> create.err
TXID=$(sed -n 's/.*"id":"\([0-9a-f]\{32\}\)".*/\1/p' create.out)
KEK=$(sed -n 's/.*"kek":"\([0-9a-f]\{64\}\)".*/\1/p' create.out)
[ "$(cat create.status)" = 201 ] && [ -n "$TXID" ] && [ -n "$KEK" ]
ok $? "POST /v1/transactions with the gateway's certificate: 201, id and kek" \
    || diag "$(cat create.status create.out create.err)"

openssl cms -encrypt -binary -aes-256-gcm -secretkey "$KEK" -secretkeyid "$TXID" \
    -in msg.eml -outform SMIME -out enc.eml 2> enc.err
ok $? "openssl cms -encrypt -aes-256-gcm -secretkey -secretkeyid" || diag "$(cat enc.err)"

# ---- decrypt: the original bytes ---------------------------------------
dec ok1 --recipient bob@example.org "${GWOPTS[@]}" -o out1.eml enc.eml
[ $rc -eq 0 ] && [ ! -s ok1.err ]
ok $? "decrypt for bob with --provider/--ca/--cert/--key: exit 0, nothing on stderr" || diag "$(cat ok1.err)"
cmp -s msg.eml out1.eml
ok $? "-o OUT holds the original message byte for byte"
[ "$(stat -c %a out1.eml)" = 600 ]
ok $? "OUT is created with mode 0600"
dec ok2 --recipient BOB@Example.ORG "${GWOPTS[@]}" < enc.eml > out2.eml
[ $rc -eq 0 ] && cmp -s msg.eml out2.eml
ok $? "standard input to standard output, recipient in another case" || diag "$(cat ok2.err)"
dec ok7 --recipient bob@example.org "${GWOPTS[@]}" -o /dev/stdout enc.eml > out7.eml
[ $rc -eq 0 ] && cmp -s msg.eml out7.eml && [ -L /dev/stdout ]
ok $? "-o /dev/stdout: written through the link, the link left alone" || diag "$(cat ok7.err)"
dec ok3 --recipient=bob@example.org --route=in -o out3.eml - < enc.eml
[ $rc -eq 0 ] && cmp -s msg.eml out3.eml
ok $? "--route in: provider, CA, certificate and key from regigate.conf" || diag "$(cat ok3.err)"

# the .p7m as the attachment of a multipart/mixed (a forwarding client)
{ printf 'From: bob@example.org\r\nMIME-Version: 1.0\r\n'
  printf 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
  printf 'Content-Type: text/plain\r\n\r\nsaved for later\r\n--b1\r\n'
  printf 'Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name="smime.p7m"\r\n'
  printf 'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n\r\n'
  sed '1,/^\r\{0,1\}$/d' enc.eml | sed 's/\r\{0,1\}$/\r/'
  printf -- '--b1--\r\n'; } > attached.eml
dec ok4 --recipient bob@example.org --route in -o out4.eml attached.eml
[ $rc -eq 0 ] && cmp -s msg.eml out4.eml
ok $? "the .p7m attachment of a multipart/mixed decrypts too" || diag "$(cat ok4.err)"

# what regigated itself writes (lib/smime), with the subject hidden
if [ -x "$RG" ]; then
    "$RG" encrypt "$KEK" "$TXID" hide-subject < msg.eml > rg.eml
    dec ok5 --recipient bob@example.org --route in -o out5.eml rg.eml
    [ $rc -eq 0 ] && cmp -s msg.eml out5.eml
    ok $? "a message encrypted by lib/smime (rg-smime) decrypts" || diag "$(cat ok5.err)"
else
    T_NUM=$((T_NUM + 1)); echo "ok $T_NUM - lib/smime message # SKIP $RG not built"
fi

# larger than the 1 MiB kept in memory: the spools go to TMPDIR files
{ printf 'Subject: large\r\n\r\n'; head -c 2500000 /dev/urandom | base64; } > large.eml
openssl cms -encrypt -binary -aes-256-gcm -secretkey "$KEK" -secretkeyid "$TXID" \
    -in large.eml -outform SMIME -out large.enc
mkdir tmp
TMPDIR=$T_DIR/tmp dec ok6 --recipient bob@example.org --route in large.enc > large.out
[ $rc -eq 0 ] && cmp -s large.eml large.out && [ -z "$(ls tmp)" ]
ok $? "a 3 MB message (file spools, unlinked at once) to standard output" || diag "$(cat ok6.err)"

# the retrievals are recorded at the provider
curl -sS -o events.out --cacert data/ca.crt --cert "$CERTS/provider.crt" --key "$CERTS/provider.key" \
    --max-time 10 "$URL/v1/transactions/$TXID/events" 2> /dev/null
[ "$(grep -o '"type":"key_retrieved"' events.out | wc -l)" -ge 5 ] \
    && grep -q '"recipient":"bob@example.org"' events.out
ok $? "the provider recorded the key retrievals for bob" || diag "$(cat events.out)"

# ---- refused by the provider: exit 1, no output ------------------------
dec na --recipient dave@example.org "${GWOPTS[@]}" -o na.eml enc.eml > na.stdout
[ $rc -eq 1 ] && one_error na "dave@example.org is not a recipient of transaction $TXID"
ok $? "a recipient not in the transaction: exit 1, one line" || diag "rc=$rc $(cat na.err)"
[ ! -e na.eml ] && [ ! -s na.stdout ]
ok $? "... and no output file, nothing on stdout"
dec noacc --recipient carol@example.net "${GWOPTS[@]}" -o noacc.eml enc.eml
[ $rc -eq 1 ] && one_error noacc "carol@example.net has no account at the provider" && [ ! -e noacc.eml ]
ok $? "a recipient without account: exit 1, no output" || diag "rc=$rc $(cat noacc.err)"
OTHERID=$(openssl rand -hex 16)
openssl cms -encrypt -binary -aes-256-gcm -secretkey "$KEK" -secretkeyid "$OTHERID" \
    -in msg.eml -outform SMIME -out unknown.eml
dec unk --recipient bob@example.org "${GWOPTS[@]}" -o unk.eml unknown.eml
[ $rc -eq 1 ] && one_error unk "transaction $OTHERID is unknown at the provider" && [ ! -e unk.eml ]
ok $? "an unknown transaction: exit 1, no output" || diag "rc=$rc $(cat unk.err)"

# ---- bad messages: exit 1, no output ------------------------------------
lines=$(wc -l < enc.eml)
awk -v n=$((lines / 2)) 'NR == n { c = substr($0, 10, 1); $0 = substr($0, 1, 9) (c == "A" ? "B" : "A") substr($0, 11) } { print }' \
    enc.eml > tampered.eml
cmp -s enc.eml tampered.eml
[ $? -eq 1 ]
ok $? "tampered.eml differs from enc.eml in one base64 character"
dec tamp --recipient bob@example.org "${GWOPTS[@]}" -o tamp.eml tampered.eml > tamp.stdout
[ $rc -eq 1 ] && one_error tamp "tampered.eml: wrong key or tampered message"
ok $? "tampered ciphertext: exit 1, wrong key or tampered" || diag "rc=$rc $(cat tamp.err)"
[ ! -e tamp.eml ] && [ ! -s tamp.stdout ] && [ -z "$(ls | grep '^tamp\.eml\.')" ]
ok $? "... no output file, no temporary file, nothing on stdout"
dec tamp2 --recipient bob@example.org "${GWOPTS[@]}" < tampered.eml > tamp2.stdout
[ $rc -eq 1 ] && [ ! -s tamp2.stdout ] && one_error tamp2 "standard input: wrong key or tampered"
ok $? "tampered, to standard output: exit 1, not one byte written" || diag "rc=$rc $(cat tamp2.err)"
echo "keep me" > existing.eml
dec tamp3 --recipient bob@example.org "${GWOPTS[@]}" -o existing.eml tampered.eml
[ $rc -eq 1 ] && [ "$(cat existing.eml)" = "keep me" ]
ok $? "tampered with -o of an existing file: the file is left alone"
openssl cms -encrypt -binary -aes-256-gcm -secretkey "$(openssl rand -hex 32)" -secretkeyid "$TXID" \
    -in msg.eml -outform SMIME -out wrongkek.eml
dec wk --recipient bob@example.org "${GWOPTS[@]}" -o wk.eml wrongkek.eml
[ $rc -eq 1 ] && one_error wk "wrong key or tampered message" && [ ! -e wk.eml ]
ok $? "encrypted with another KEK under the same id: exit 1, no output" || diag "rc=$rc $(cat wk.err)"
head -c $(($(wc -c < enc.eml) * 2 / 3)) enc.eml > truncated.eml
dec trunc --recipient bob@example.org "${GWOPTS[@]}" -o trunc.eml truncated.eml
[ $rc -eq 1 ] && one_error trunc "truncated.eml: truncated encrypted message" && [ ! -e trunc.eml ]
ok $? "truncated message: exit 1, truncated, no output" || diag "rc=$rc $(cat trunc.err)"

printf 'From: alice@example.com\r\nSubject: plain\r\n\r\nHello.\r\n' > plain.eml
dec plain --recipient bob@example.org "${GWOPTS[@]}" -o plain.out plain.eml
[ $rc -eq 1 ] && one_error plain "plain.eml: not an encrypted regigate message \(no S/MIME in it\)" \
    && [ ! -e plain.out ]
ok $? "a plain message: exit 1, not an encrypted regigate message" || diag "rc=$rc $(cat plain.err)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout bob.key -out bob.crt \
    -days 1 -subj /CN=bob >/dev/null 2>&1
openssl cms -encrypt -binary -aes-256-cbc -in plain.eml -outform SMIME -out smime.eml bob.crt 2>/dev/null
dec other --recipient bob@example.org "${GWOPTS[@]}" -o other.out smime.eml
[ $rc -eq 1 ] && one_error other "smime.eml: not an encrypted regigate message but other S/MIME" \
    && [ ! -e other.out ]
ok $? "S/MIME encrypted for a certificate: exit 1, other S/MIME" || diag "rc=$rc $(cat other.err)"
openssl cms -sign -in plain.eml -signer bob.crt -inkey bob.key -outform SMIME -out signed.eml 2>/dev/null
dec signed --recipient bob@example.org "${GWOPTS[@]}" signed.eml > signed.stdout
[ $rc -eq 1 ] && one_error signed "other S/MIME" && [ ! -s signed.stdout ]
ok $? "a signed S/MIME message: exit 1, other S/MIME" || diag "rc=$rc $(cat signed.err)"
dec missing --recipient bob@example.org "${GWOPTS[@]}" nosuch.eml
[ $rc -eq 1 ] && one_error missing "cannot open nosuch.eml: No such file or directory"
ok $? "a missing input file: exit 1" || diag "rc=$rc $(cat missing.err)"

# ---- usage and configuration errors -------------------------------------
dec u1 "${GWOPTS[@]}" enc.eml
[ $rc -eq 2 ] && head -1 u1.err | grep -q "^regigatectl: error: decrypt: --recipient is required"
ok $? "no --recipient: exit 2" || diag "rc=$rc $(cat u1.err)"
dec u2 --recipient bob@example.org --route in --provider "$URL" enc.eml
[ $rc -eq 2 ] && head -1 u2.err | grep -q "^regigatectl: error: decrypt: --route cannot be combined"
ok $? "--route with --provider: exit 2" || diag "rc=$rc $(cat u2.err)"
dec u3 --recipient bob@example.org --provider "$URL" --ca data/ca.crt enc.eml
[ $rc -eq 2 ] && head -1 u3.err | grep -q "^regigatectl: error: decrypt: give --route NAME"
ok $? "--provider without --cert: exit 2" || diag "rc=$rc $(cat u3.err)"
dec u4 --recipient "not an address" --route in enc.eml
[ $rc -eq 2 ] && head -1 u4.err | grep -q "^regigatectl: error: decrypt: --recipient not an address: not an e-mail address"
ok $? "a recipient that is no address: exit 2" || diag "rc=$rc $(cat u4.err)"
dec u5 --recipient bob@example.org --route in enc.eml plain.eml
[ $rc -eq 2 ] && head -1 u5.err | grep -q "^regigatectl: error: decrypt: one message at a time"
ok $? "two files: exit 2" || diag "rc=$rc $(cat u5.err)"
dec u6 --recipient bob@example.org --route in --bogus enc.eml
[ $rc -eq 2 ] && head -1 u6.err | grep -q "^regigatectl: error: decrypt: unknown option --bogus"
ok $? "an unknown option: exit 2" || diag "rc=$rc $(cat u6.err)"
dec r1 --recipient bob@example.org --route nosuch -o r1.eml enc.eml
[ $rc -eq 1 ] && one_error r1 "no route 'nosuch' in regigate.conf" && [ ! -e r1.eml ]
ok $? "an unknown route: exit 1" || diag "rc=$rc $(cat r1.err)"
dec r2 --recipient bob@example.org --route noprovider enc.eml
[ $rc -eq 1 ] && one_error r2 "route noprovider has no provider in regigate.conf"
ok $? "a route without provider: exit 1" || diag "rc=$rc $(cat r2.err)"
dec r3 --recipient bob@example.org --provider "$URL" --ca nosuch-ca.crt --cert "$CERTS/provider.crt" \
    --key "$CERTS/provider.key" enc.eml
[ $rc -eq 1 ] && one_error r3 "nosuch-ca.crt: No such file or directory"
ok $? "a missing CA file: exit 1" || diag "rc=$rc $(cat r3.err)"
dec r4 --recipient bob@example.org --provider "$URL" --ca data/ca.crt --cert req.csr \
    --key "$CERTS/provider.key" enc.eml
[ $rc -eq 1 ] && one_error r4 "certificate req.csr not usable: no PEM certificate found"
ok $? "not a certificate: exit 1, not a temporary failure" || diag "rc=$rc $(cat r4.err)"
dec r5 --recipient bob@example.org --provider "$URL" --ca data/ca.crt --cert "$CERTS/provider.crt" \
    --key bob.key enc.eml
[ $rc -eq 1 ] && one_error r5 "certificate $CERTS/provider.crt not usable: the certificate is not for"
ok $? "a certificate for another key: exit 1" || diag "rc=$rc $(cat r5.err)"
cat "$CERTS/provider.key" "$CERTS/provider.crt" > key_cert.pem && chmod 600 key_cert.pem
dec kc --recipient bob@example.org --provider "$URL" --ca data/ca.crt --cert key_cert.pem enc.eml > kc.eml
[ $rc -eq 0 ] && cmp -s msg.eml kc.eml
ok $? "one key_cert.pem with --cert and no --key" || diag "rc=$rc $(cat kc.err)"

# ---- the provider down: EX_TEMPFAIL (75), no output ---------------------
t_stop_pid "$PROVIDER_PID"
dec down --recipient bob@example.org "${GWOPTS[@]}" -o down.eml enc.eml > down.stdout
[ $rc -eq 75 ] && one_error down "provider $URL temporarily unavailable: .*try again later"
ok $? "provider stopped: exit 75, temporarily unavailable" || diag "rc=$rc $(cat down.err)"
[ ! -e down.eml ] && [ ! -s down.stdout ]
ok $? "... no output"
dec down2 --recipient bob@example.org --route in < enc.eml > down2.stdout
[ $rc -eq 75 ] && [ ! -s down2.stdout ]
ok $? "provider stopped, --route form: exit 75" || diag "rc=$rc $(cat down2.err)"
# the local checks come first: a plain message is still a definite no
dec down3 --recipient bob@example.org --route in plain.eml
[ $rc -eq 1 ] && one_error down3 "not an encrypted regigate message"
ok $? "provider stopped, plain message: still exit 1" || diag "rc=$rc $(cat down3.err)"
[ -z "$(ls "$T_DIR" | grep -E '\.eml\.[A-Za-z0-9]{6}$')" ]
ok $? "no temporary output files left behind"

t_done
