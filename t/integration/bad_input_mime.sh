#!/bin/bash
# Bad MIME and header input through the daemon with rule sets that read
# headers (issue 7, "Bad input"; doc/reliability.md has the table):
# missing and duplicated boundaries, nesting 1,000 deep, RFC 2231
# continuations, malformed encoded-words, a header section of 1 MB
# (max_header_size -> 552 5.3.4), 8-bit and NUL in headers. Never a crash,
# a clear reply, and a message that a rule says to encrypt is never passed
# on in clear: the route's provider is unusable, so every message the
# "secure" rule matches must get 451 4.7.0 and reach nobody.
# A second route decrypts: detection of encrypted mail on hostile MIME
# must take bounded time (it took minutes for a few hundred KB).
. "$(dirname "$0")/lib.sh"
plan 33

LISTEN_PORT=$(free_port); REINJECT_PORT=$(free_port); IN_PORT=$(free_port); IN_SINK=$(free_port)
OUT=$T_DIR/out; IN=$T_DIR/in
cat > "$T_DIR/out.json" <<'EOR'
{ "rules": [
    { "name": "secure", "action": "encrypt",
      "conditions": [ { "field": "header:Subject", "op": "contains", "value": "[secure]" } ] },
    { "name": "tag", "action": "forward",
      "conditions": [ { "field": "header:X-Tag", "op": "exists" } ],
      "tags": [ { "set-header": ["X-Regigate", "tagged"] } ] }
  ],
  "default": { "action": "forward" } }
EOR
echo '{ "default": { "action": "decrypt" } }' > "$T_DIR/in.json"
start_testsink "$REINJECT_PORT" "$OUT"
start_testsink "$IN_SINK" "$IN"
# a provider that cannot be used (no CA file): encrypt must defer
EXTRA_ROUTE="rules = $T_DIR/out.json
provider = https://127.0.0.1:1
provider_ca = $T_DIR/no-such-ca.pem

[route in]
listen = 127.0.0.1:$IN_PORT
reinject = 127.0.0.1:$IN_SINK
rules = $T_DIR/in.json
provider = https://127.0.0.1:1
provider_ca = $T_DIR/no-such-ca.pem" write_conf "$T_DIR/rg.conf"
start_regigated "$T_DIR/rg.conf" && wait_port "$IN_PORT" 5
ok $? "regigated: an encrypting route (provider unusable) and a decrypting one" || diag "$(cat "$T_DIR/regigated.log")"

# send PORT NAME: send $T_DIR/NAME.eml (CRLF lines, no line starting with
# "."); the final reply to DATA in $T_DIR/NAME.reply
send() {
    { printf 'EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n'
      cat "$T_DIR/$2.eml"; printf '.\r\nQUIT\r\n'; } > "$T_DIR/$2.in"
    RAW_TIMEOUT=${3:-15} smtp_raw "$1" "$T_DIR/$2.in" | tr -d '\r' | tail -2 | head -1 > "$T_DIR/$2.reply"
}
clear_sinks() { rm -f "$OUT"/msg-* "$IN"/msg-*; }
# never_in_clear NAME: 451 4.7.0 upstream, nothing at the sink
never_in_clear() {
    send "$LISTEN_PORT" "$1"; sleep 0.1
    grep -q '^451 4.7.0 Error: key provider not usable' "$T_DIR/$1.reply" && [ "$(sink_count "$OUT")" = 0 ]
}
# passed_unchanged NAME [PORT SINKDIR]: 250 and the sink has the exact bytes
passed_unchanged() {
    local port=${2:-$LISTEN_PORT} dir=${3:-$OUT}
    send "$port" "$1"
    grep -q '^250 2.0.0 Ok: forwarded' "$T_DIR/$1.reply" && wait_files "$dir" 1 5 \
        && cmp -s "$T_DIR/$1.eml" "$(sink_files "$dir" | tail -1)"
}
crlf_to() { sed 's/$/\r/' > "$T_DIR/$1.eml"; }

printf 'Subject: [secure] plans\r\n\r\nsecret\r\n' > "$T_DIR/plain.eml"
clear_sinks; never_in_clear plain; ok $? "the reference case: Subject [secure] -> 451 4.7.0, nothing passed" \
    || diag "$(cat "$T_DIR/plain.reply")"

# ---- boundaries ------------------------------------------------------------------------
crlf_to noclose <<'EOF'
Subject: [secure] no closing boundary
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

secret, and the closing delimiter never comes
EOF
clear_sinks; never_in_clear noclose; ok $? "missing closing boundary, [secure]: 451, not passed in clear"
crlf_to nobound <<'EOF'
Subject: [secure] boundary parameter missing
Content-Type: multipart/mixed

--
secret
EOF
clear_sinks; never_in_clear nobound; ok $? "multipart without a boundary parameter, [secure]: 451"
crlf_to dupbound <<'EOF'
Subject: two boundaries
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="a"; boundary="b"

--a
Content-Type: text/plain

one
--b
Content-Type: text/plain

two
--a
--a--
--b--
EOF
clear_sinks; passed_unchanged dupbound; ok $? "duplicated boundary parameter and delimiters: forwarded byte for byte"

# ---- nesting 1,000 deep ------------------------------------------------------------------
nest() {   # nest SUBJECT
    printf 'Subject: %s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n' "$1"
    for ((i = 1; i <= 1000; i++)); do
        printf -- '--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n' $((i - 1)) "$i"
    done
    printf -- '--b1000\r\nContent-Type: text/plain\r\n\r\ndeep\r\n'
    for ((i = 1000; i >= 0; i--)); do printf -- '--b%d--\r\n' "$i"; done
}
nest 'deep' > "$T_DIR/deep.eml"
clear_sinks; passed_unchanged deep; ok $? "multipart nested 1,000 deep: forwarded byte for byte"
nest 'deep [secure]' > "$T_DIR/deepsec.eml"
clear_sinks; never_in_clear deepsec; ok $? "nested 1,000 deep, [secure]: 451, not passed in clear"
clear_sinks; passed_unchanged deep "$IN_PORT" "$IN"
ok $? "nested 1,000 deep through the decrypting route: passed on unchanged"

# ---- RFC 2231 and encoded-words -------------------------------------------------------------
crlf_to rfc2231 <<'EOF'
Subject: parameters
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary*0="bou"; boundary*1="nd"
Content-Disposition: attachment; filename*0*=utf-8'de'Gr%C3%BC; filename*1="sse.txt"

--bound
Content-Type: text/plain; name*=iso-8859-1''%E4%F6%FC; charset*=us-ascii'en'utf-8

x
--bound--
EOF
clear_sinks; passed_unchanged rfc2231; ok $? "RFC 2231 continuations and charsets in parameters: forwarded byte for byte"
clear_sinks; passed_unchanged rfc2231 "$IN_PORT" "$IN"; ok $? "... and through the decrypting route"
n=0
for subj in '=?UTF-8?B?W3NlY3VyZV0=?=' '=?UTF-8?Q?=5Bsecure=5D?=' '=?UTF-8?Q?unterminated [secure]' \
            '=?x-no-such-charset?Q?x?= [secure]' '=?UTF-8?B?!!!?= [secure]' '=?UTF-8?Q?[sec?= =?UTF-8?Q?ure]?='; do
    n=$((n + 1))
    printf 'Subject: %s\r\n\r\nsecret\r\n' "$subj" > "$T_DIR/ew$n.eml"
    clear_sinks; never_in_clear "ew$n"; ok $? "encoded-word subject '$subj': 451, not passed in clear"
done
printf 'Subject: =?UTF-8?B?!!!?= =?UTF-8?Q?unterminated\r\nX-Tag: =?UTF-8?Q?a=0D=0ASubject:_[secure]?=\r\n\r\nbody\r\n' > "$T_DIR/ewtag.eml"
clear_sinks; send "$LISTEN_PORT" ewtag
printf 'Subject: =?UTF-8?B?!!!?= =?UTF-8?Q?unterminated\r\nX-Tag: =?UTF-8?Q?a=0D=0ASubject:_[secure]?=\r\nX-Regigate: tagged\r\n\r\nbody\r\n' > "$T_DIR/ewtag.expect"
grep -q '^250 ' "$T_DIR/ewtag.reply" && wait_files "$OUT" 1 && cmp -s "$T_DIR/ewtag.expect" "$(sink_files "$OUT")"
ok $? "malformed encoded-words, a decoded CR LF in a tagged message: the tag added, nothing injected"

# ---- 1 MB header section (max_header_size = 1 MiB) -------------------------------------------
filler() { # filler BYTES: X-Filler lines of 64 bytes
    local i
    for ((i = 0; i < $1 / 64; i++)); do printf 'X-Filler: %052d\r\n' "$i"; done
}
{ filler 1100000; printf 'Subject: [secure] at the end of a big header\r\n\r\nsecret\r\n'; } > "$T_DIR/bighdr.eml"
clear_sinks; send "$LISTEN_PORT" bighdr; sleep 0.1
grep -q '^552 5.3.4 Error: message header section exceeds 1048576 bytes' "$T_DIR/bighdr.reply" && [ "$(sink_count "$OUT")" = 0 ]
ok $? "a 1.1 MB header section: 552 5.3.4, nothing passed" || diag "$(cat "$T_DIR/bighdr.reply")"
log_has 'action=reject rule=- status=rejected reply=\(552 5.3.4'; ok $? "... logged as rejected"
{ filler 1000000; printf 'Subject: [secure] big header under the limit\r\n\r\nsecret\r\n'; } > "$T_DIR/bighdr2.eml"
clear_sinks; never_in_clear bighdr2; ok $? "a 1.0 MB header section (under the limit), [secure] last: 451, not passed"
{ printf 'Subject: x\r\nX-Long: '; head -c 1100000 /dev/zero | tr '\0' a; printf '\r\n\r\nbody\r\n'; } > "$T_DIR/longhdr.eml"
clear_sinks; send "$LISTEN_PORT" longhdr
grep -q '^552 5.3.4' "$T_DIR/longhdr.reply"; ok $? "one header line of 1.1 MB: 552 5.3.4"

# ---- 8-bit, NUL, folding, repetition ---------------------------------------------------------
printf 'Subject: Gr\303\274\303\237e [secure]\r\n\r\nsecret\r\n' > "$T_DIR/utf8.eml"
clear_sinks; never_in_clear utf8; ok $? "raw UTF-8 in the Subject, [secure]: 451"
printf 'Subject: Gr\374\337e [secure]\r\n\r\nsecret\r\n' > "$T_DIR/latin1.eml"
clear_sinks; never_in_clear latin1; ok $? "raw Latin-1 (invalid UTF-8) in the Subject, [secure]: 451"
printf 'Subject: \0[secure]\0\r\n\r\nsecret\r\n' > "$T_DIR/nulsubj.eml"
clear_sinks; never_in_clear nulsubj; ok $? "NUL bytes around [secure] in the Subject: 451"
printf 'Subject: hello\r\n\t[secure]\r\n\r\nsecret\r\n' > "$T_DIR/folded.eml"
clear_sinks; never_in_clear folded; ok $? "[secure] on a folded continuation line: 451"
printf 'Subject: harmless\r\nX-A: 1\r\nsUbJeCt  : [secure]\r\n\r\nsecret\r\n' > "$T_DIR/second.eml"
clear_sinks; never_in_clear second; ok $? "a second Subject (odd case, space before the colon) with [secure]: 451"
printf 'X-A: 1\r\nX-\303\244: 8-bit name\r\nSubject: [secure]\r\n\r\nx\r\n' > "$T_DIR/8bitname.eml"
clear_sinks; passed_unchanged 8bitname
ok $? "an 8-bit field name ends the header section (as in Postfix): what follows is body, forwarded unchanged"
printf 'X-Tag: Gr\374\337e \0 \303\244\r\n\r\nbody\r\n' > "$T_DIR/tag8.eml"
clear_sinks; send "$LISTEN_PORT" tag8
printf 'X-Tag: Gr\374\337e \0 \303\244\r\nX-Regigate: tagged\r\n\r\nbody\r\n' > "$T_DIR/tag8.expect"
grep -q '^250 ' "$T_DIR/tag8.reply" && wait_files "$OUT" 1 && cmp -s "$T_DIR/tag8.expect" "$(sink_files "$OUT")"
ok $? "8-bit and NUL in a field of a tagged message: kept byte for byte, the tag added"

# ---- detection on the decrypting route: bounded time ------------------------------------------
# (the bounds times T_SLOW: an ASan or valgrind build is slower)
{ printf 'Subject: field-like boundary\r\nContent-Type: multipart/mixed; boundary="x:"\r\n\r\n'
  for ((i = 0; i < 5; i++)); do yes -- '--x:' | head -n 10000 | sed 's/$/\r/'; printf '\r\n'; done
} > "$T_DIR/xbound.eml"
clear_sinks
start=$(date +%s%N)
passed_unchanged xbound "$IN_PORT" "$IN"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 0 ] && [ "$ms" -lt $((5000 * T_SLOW)) ]
ok $? "decrypting route, 300 KB of field-like boundaries: passed unchanged in $ms ms (took minutes)"
{ printf 'Subject: many parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n'
  yes -- '--b' | head -n 200000 | sed 's/$/\r/'; printf -- '--b--\r\n'; } > "$T_DIR/parts.eml"
clear_sinks
start=$(date +%s%N)
passed_unchanged parts "$IN_PORT" "$IN"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 0 ] && [ "$ms" -lt $((5000 * T_SLOW)) ]
ok $? "decrypting route, 200,000 empty parts: passed unchanged in $ms ms"
log_has 'to=<b@example.org> .*action=decrypt rule=default status=sent .*decrypt=not-encrypted'
ok $? "... logged as not encrypted"

# ---- never a crash ---------------------------------------------------------------------------
kill -0 "$REGIGATED_PID" && ! log_has 'killed by signal|exited with status|panic'
ok $? "no worker crashed, the master is up"
[ -z "$(spool_left "$T_DIR/spool")" ]; ok $? "the spool directory is empty"
t_done
