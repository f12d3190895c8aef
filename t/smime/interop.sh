#!/bin/bash
# t/smime/interop.sh - the encrypted message format against stock OpenSSL,
# both ways (doc/message-format.md):
#  - what regigate encrypts (t/helpers/rg-smime, i.e. lib/smime.c) decrypts
#    with `openssl cms -decrypt -secretkey KEK -secretkeyid TXID` into the
#    original bytes;
#  - what `openssl cms -encrypt -aes-256-gcm -secretkey KEK -secretkeyid TXID
#    -outform SMIME` produces (streamed or not) is recognised and decrypted
#    by regigate into the original bytes;
#  - certificate S/MIME made by openssl is not taken for ours, a wrong key
#    and a tampered message fail on both sides.
# Prints TAP.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/t/integration/lib.sh"

RG=${RG_SMIME:-$top_builddir/t/helpers/rg-smime}

need openssl
[ -x "$RG" ] || skip_all "$RG not built"

plan 38

cd "$T_DIR" || exit 1
KEK=$(openssl rand -hex 32)
TXID=$(openssl rand -hex 16)
OTHER=$(openssl rand -hex 32)

# The test messages: plain, 8-bit with binary bytes and UTF-8 headers, no
# final CRLF, dot lines, empty body.
printf 'From: a@example.org\r\nTo: b@example.com\r\nSubject: plain\r\n\r\nHello.\r\n' > plain.eml
{ printf 'From: J\303\274rgen <j@example.org>\r\nSubject: Gr\303\274\303\237e\r\n'
  printf 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'
  head -c 5000 /dev/urandom; } > binary.eml
printf 'Subject: edges\r\n\r\n.\r\n..\r\nno final CRLF' > edges.eml
printf 'Subject: empty body\r\n\r\n' > empty.eml
{ printf 'Subject: large\r\n\r\n'; head -c 3000000 /dev/urandom | base64; } > large.eml
MSGS="plain binary edges empty large"

# regigate -> openssl: an administrator with the KEK decrypts the saved mail
for m in $MSGS; do
    "$RG" encrypt "$KEK" "$TXID" < $m.eml > $m.rg
    ok $? "$m: rg-smime encrypt"
    openssl cms -decrypt -inform SMIME -secretkey "$KEK" -secretkeyid "$TXID" \
        -in $m.rg -out $m.ossl-plain 2>err.txt && cmp -s $m.eml $m.ossl-plain
    ok $? "$m: openssl cms -decrypt gives the original bytes"
done
grep -q '^Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data;' plain.rg
ok $? "outer Content-Type"
awk 'f && length($0) > 77 { bad = 1 } /^\r?$/ { f = 1 } END { exit bad }' large.rg
ok $? "base64 lines of at most 76 characters"
openssl cms -cmsout -print -inform SMIME -in plain.rg > print.txt 2>&1 &&
    grep -q 'id-smime-ct-authEnvelopedData' print.txt &&
    grep -qi "keyIdentifier:" print.txt && grep -q 'id-aes256-wrap' print.txt &&
    grep -q 'aes-256-gcm' print.txt
ok $? "openssl sees AuthEnvelopedData, a KEK recipient with AES-256 key wrap, AES-256-GCM"
! openssl cms -decrypt -inform SMIME -secretkey "$OTHER" -secretkeyid "$TXID" -in plain.rg \
    -out wrong.txt >/dev/null 2>&1
ok $? "openssl refuses a wrong KEK"

# openssl -> regigate, plain and streamed (indefinite-length BER)
for m in $MSGS; do
    openssl cms -encrypt -binary -aes-256-gcm -secretkey "$KEK" -secretkeyid "$TXID" \
        -in $m.eml -outform SMIME -out $m.ossl 2>err.txt
    ok $? "$m: openssl cms -encrypt -aes-256-gcm -secretkey -secretkeyid"
    "$RG" decrypt "$KEK" < $m.ossl > $m.rg-plain && cmp -s $m.eml $m.rg-plain
    ok $? "$m: rg-smime decrypts it into the original bytes"
done
openssl cms -encrypt -binary -stream -aes-256-gcm -secretkey "$KEK" -secretkeyid "$TXID" \
    -in large.eml -outform SMIME -out large.ossl-stream
"$RG" decrypt "$KEK" < large.ossl-stream > large.stream-plain && cmp -s large.eml large.stream-plain
ok $? "large, streamed by openssl: rg-smime decrypts it"
[ "$("$RG" detect < plain.ossl)" = "ours $TXID toplevel" ]
ok $? "rg-smime detect finds the txid in openssl's message"
! "$RG" decrypt "$OTHER" < plain.ossl > wrong.out 2>err.txt && [ ! -s wrong.out ] &&
    grep -q 'wrong key or tampered' err.txt
ok $? "rg-smime refuses a wrong KEK, no output"

# a tampered byte in the ciphertext (middle of the base64 of a large message)
lines=$(wc -l < large.rg)
awk -v n=$((lines / 2)) 'NR == n { c = substr($0, 10, 1); $0 = substr($0, 1, 9) (c == "A" ? "B" : "A") substr($0, 11) } { print }' \
    large.rg > tampered.rg
! "$RG" decrypt "$KEK" < tampered.rg > tampered.out 2>err.txt && [ ! -s tampered.out ] &&
    grep -q 'wrong key or tampered' err.txt
ok $? "rg-smime: tampered ciphertext fails the GCM tag, no output"
! openssl cms -decrypt -inform SMIME -secretkey "$KEK" -secretkeyid "$TXID" -in tampered.rg \
    -out tampered.ossl >/dev/null 2>&1
ok $? "openssl agrees: tampered"
head -c $(($(wc -c < large.rg) / 2)) large.rg > truncated.rg
! "$RG" decrypt "$KEK" < truncated.rg > truncated.out 2>err.txt && [ ! -s truncated.out ] &&
    grep -q 'truncated' err.txt
ok $? "rg-smime: truncated base64 fails as truncated, no output"

# The .p7m as the attachment of a multipart/mixed (the other packaging a
# client may produce when it forwards it): how an administrator extracts the
# part for openssl, and rg-smime finding it itself.
{ printf 'From: a@example.org\r\nMIME-Version: 1.0\r\n'
  printf 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
  printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nThis message is encrypted.\r\n--b1\r\n'
  printf 'Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name="smime.p7m"\r\n'
  printf 'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n\r\n'
  sed '1,/^\r\{0,1\}$/d' binary.rg
  printf -- '--b1--\r\n'; } > multipart.eml
[ "$("$RG" detect < multipart.eml)" = "ours $TXID attachment" ]
ok $? "multipart/mixed: rg-smime detect finds the .p7m attachment"
"$RG" decrypt "$KEK" < multipart.eml > multipart.plain && cmp -s binary.eml multipart.plain
ok $? "multipart/mixed: rg-smime decrypts the attachment"
# extract: the part's headers and base64, up to the closing boundary
awk '/^--b1/ { n++; next } n == 2' multipart.eml > part.p7m
openssl cms -decrypt -inform SMIME -secretkey "$KEK" -secretkeyid "$TXID" -in part.p7m \
    -out part.plain 2>err.txt && cmp -s binary.eml part.plain
ok $? "multipart/mixed: the extracted .p7m part decrypts with openssl"

# ordinary S/MIME is not ours
openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 1 -subj /CN=test \
    >/dev/null 2>&1
openssl cms -encrypt -binary -aes-256-cbc -in plain.eml -outform SMIME -out cert-env.eml c.pem
[ "$("$RG" detect < cert-env.eml)" = "other not an encrypted regigate message" ]
ok $? "EnvelopedData for a certificate: other S/MIME, not ours"
openssl cms -encrypt -binary -aes-256-gcm -in plain.eml -outform SMIME -out cert-auth.eml c.pem
[ "$("$RG" detect < cert-auth.eml)" = "other not an encrypted regigate message" ]
ok $? "AuthEnvelopedData for a certificate: other S/MIME, not ours"
openssl cms -sign -in plain.eml -signer c.pem -inkey k.pem -outform SMIME -out signed.eml
[ "$("$RG" detect < signed.eml)" = "other not an encrypted regigate message" ]
ok $? "multipart/signed: other S/MIME, not ours"
openssl cms -sign -nodetach -in plain.eml -signer c.pem -inkey k.pem -outform SMIME -out opaque.eml
[ "$("$RG" detect < opaque.eml)" = "other not an encrypted regigate message" ]
ok $? "opaque signed-data: other S/MIME, not ours"
! "$RG" decrypt "$KEK" < cert-env.eml > /dev/null 2>&1
ok $? "rg-smime decrypt refuses certificate S/MIME"

t_done
