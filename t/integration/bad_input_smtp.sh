#!/bin/bash
# Bad input at the SMTP level against the real daemon (issue 7, "Bad input";
# doc/reliability.md has the table). Each case has an exact expected reply
# or behaviour: NUL bytes in data, 1 MB lines in commands and in data,
# 10,000 recipients, commands pipelined after DATA, BDAT without CHUNKING,
# invalid addresses, UTF-8 addresses without SMTPUTF8, XFORWARD with CR/LF
# or overlong values, and a client that goes away at each protocol step.
# Not repeated here (see smuggling.sh, relay_errors.sh): end-of-data
# look-alikes, a 5000-byte command, NUL in a command, the error limit,
# the idle timeout, BDAT's 503.
. "$(dirname "$0")/lib.sh"
need ss
plan 29

LISTEN_PORT=$(free_port); REINJECT_PORT=$(free_port)
OUT=$T_DIR/out
start_testsink "$REINJECT_PORT" "$OUT"
SMTP_TIMEOUT=10 write_conf "$T_DIR/rg.conf"
start_regigated "$T_DIR/rg.conf"; ok $? "regigated in front of a capture sink"

# replies FILE: what the daemon answered to FILE's bytes, CRs removed,
# greeting and EHLO reply dropped
replies() {
    smtp_raw "$LISTEN_PORT" "$1" | tr -d '\r' | sed '1,/^250 ENHANCEDSTATUSCODES/d'
}
# codes: the first 9 columns of each reply ("250 2.1.5"), one line each
codes() { cut -c1-9 | tr '\n' ' ' | sed 's/ $//'; }
# last_eml: the newest message at the sink (its .env written too)
last_eml() {
    local f i
    for ((i = 0; i < 100; i++)); do
        f=$(sink_files "$OUT" | tail -1)
        [ -n "$f" ] && [ -f "${f%.eml}.env" ] && { echo "$f"; return 0; }
        sleep 0.05
    done
    return 1
}
clear_sink() { rm -f "$OUT"/msg-*; }
HDR='EHLO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n'

# ---- NUL bytes in DATA: content, passed on byte for byte ----------------------
printf 'Subject: nul\0here\r\nX-A: 1\r\n\r\nbody \0 with\0NULs\r\n\0\r\n' > "$T_DIR/nul.expect"
{ printf "$HDR"; cat "$T_DIR/nul.expect"; printf '.\r\nQUIT\r\n'; } > "$T_DIR/nul.in"
replies "$T_DIR/nul.in" > "$T_DIR/nul.out"
[ "$(codes < "$T_DIR/nul.out")" = "250 2.1.0 250 2.1.5 354 End d 250 2.0.0 221 2.0.0" ]
ok $? "NUL bytes in DATA: 250, the message is accepted" || diag "$(cat "$T_DIR/nul.out")"
f=$(last_eml) && cmp -s "$T_DIR/nul.expect" "$f"
ok $? "NUL bytes in DATA: delivered byte for byte, NULs kept"

# ---- 1 MB lines ----------------------------------------------------------------
head -c 1048576 /dev/zero | tr '\0' a > "$T_DIR/1m"
{ printf 'EHLO x\r\nNOOP '; cat "$T_DIR/1m"; printf '\r\nMAIL FROM:<'; cat "$T_DIR/1m"; printf '@example.com>\r\n'
  printf 'MAIL FROM:<a@example.com>\r\nRCPT TO:<'; cat "$T_DIR/1m"; printf '@example.org>\r\n'
  printf 'RCPT TO:<b@example.org>\r\nDATA\r\nSubject: after long lines\r\n\r\nx\r\n.\r\nQUIT\r\n'; } > "$T_DIR/long.in"
clear_sink
replies "$T_DIR/long.in" > "$T_DIR/long.out"
[ "$(codes < "$T_DIR/long.out")" = "500 5.5.2 500 5.5.2 250 2.1.0 500 5.5.2 250 2.1.5 354 End d 250 2.0.0 221 2.0.0" ] \
    && [ "$(grep -c '^500 5.5.2 Error: line too long$' "$T_DIR/long.out")" = 3 ]
ok $? "1 MB command lines (NOOP, MAIL, RCPT): one 500 5.5.2 each, the session goes on" || diag "$(cut -c1-80 "$T_DIR/long.out")"
f=$(last_eml) && [ "$(sink_count "$OUT")" = 1 ] && grep -qx 'RCPT TO:<b@example.org>' "${f%.eml}.env" \
    && [ "$(grep -c '^RCPT' "${f%.eml}.env")" = 1 ]
ok $? "... and the message after them is delivered to the one valid recipient"

{ printf 'Subject: one long line\r\n\r\n'; cat "$T_DIR/1m"; printf '\r\nend\r\n'; } > "$T_DIR/longdata.expect"
{ printf "$HDR"; cat "$T_DIR/longdata.expect"; printf '.\r\nQUIT\r\n'; } > "$T_DIR/longdata.in"
clear_sink
[ "$(replies "$T_DIR/longdata.in" | codes)" = "250 2.1.0 250 2.1.5 354 End d 250 2.0.0 221 2.0.0" ] \
    && f=$(last_eml) && cmp -s "$T_DIR/longdata.expect" "$f"
ok $? "a 1 MB line in DATA: accepted and delivered byte for byte"

# a 1 MB line that never ends: the client goes away, the daemon carries on
{ printf 'EHLO x\r\nNOOP '; cat "$T_DIR/1m"; } > "$T_DIR/noend.in"
RAW_TIMEOUT=1 smtp_raw "$LISTEN_PORT" "$T_DIR/noend.in" > /dev/null
sleep 0.3
log_has 'lost connection after EHLO from 127.0.0.1'
ok $? "a 1 MB line without its end, then disconnect: logged as lost connection after EHLO"

# ---- 10,000 recipients: max_recipients (1000) -> 452 4.5.3 ------------------------
{ printf 'EHLO x\r\nMAIL FROM:<a@example.com>\r\n'
  for ((i = 1; i <= 10000; i++)); do printf 'RCPT TO:<r%d@example.org>\r\n' "$i"; done
  printf 'DATA\r\nSubject: many\r\n\r\nx\r\n.\r\nQUIT\r\n'; } > "$T_DIR/rcpt.in"
clear_sink
start=$(date +%s)
RAW_TIMEOUT=30 replies "$T_DIR/rcpt.in" > "$T_DIR/rcpt.out"
el=$(( $(date +%s) - start ))
[ "$(grep -c '^250 2.1.5 Ok$' "$T_DIR/rcpt.out")" = 1000 ] \
    && [ "$(grep -c '^452 4.5.3 Error: too many recipients$' "$T_DIR/rcpt.out")" = 9000 ] \
    && [ "$(sed -n 1002p "$T_DIR/rcpt.out" | cut -c1-9)" = "452 4.5.3" ] \
    && tail -2 "$T_DIR/rcpt.out" | head -1 | grep -q '^250 2.0.0 Ok: forwarded'
ok $? "10,000 RCPTs: 1000 x 250, then 9000 x 452 4.5.3, DATA accepted (${el}s)" \
    || diag "$(sort "$T_DIR/rcpt.out" | uniq -c | sort -rn | head -5)"
f=$(last_eml) && [ "$(grep -c '^RCPT TO:' "${f%.eml}.env")" = 1000 ] \
    && [ "$(grep '^RCPT TO:' "${f%.eml}.env" | head -1)" = "RCPT TO:<r1@example.org>" ] \
    && [ "$(grep '^RCPT TO:' "${f%.eml}.env" | tail -1)" = "RCPT TO:<r1000@example.org>" ]
ok $? "... the 1000 accepted recipients are delivered (one message, r1..r1000)"

# ---- commands pipelined after DATA ------------------------------------------------
# a client that does not wait for 354: the message and the next transaction
# arrive in one write; each is read in order
{ printf "$HDR"'Subject: first\r\n\r\none\r\n.\r\n'
  printf 'MAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.org>\r\nDATA\r\nSubject: second\r\n\r\ntwo\r\n.\r\nQUIT\r\n'; } > "$T_DIR/pipe.in"
clear_sink
replies "$T_DIR/pipe.in" > "$T_DIR/pipe.out"
[ "$(codes < "$T_DIR/pipe.out")" = "250 2.1.0 250 2.1.5 354 End d 250 2.0.0 250 2.1.0 250 2.1.5 354 End d 250 2.0.0 221 2.0.0" ]
ok $? "two transactions and QUIT in one write: every reply in order" || diag "$(cat "$T_DIR/pipe.out")"
wait_files "$OUT" 2; sleep 0.1
a=$(sink_files "$OUT" | head -1); b=$(sink_files "$OUT" | tail -1)
printf 'Subject: first\r\n\r\none\r\n' | cmp -s - "$a" && printf 'Subject: second\r\n\r\ntwo\r\n' | cmp -s - "$b" \
    && grep -q 'd@example.org' "${b%.eml}.env"
ok $? "... both messages delivered intact, each to its own recipient"
# DATA refused (no valid recipient): what follows is read as commands, as
# Postfix does; none of it is taken as a message
{ printf 'EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<bad address>\r\nDATA\r\n'
  printf 'Subject: not a message\r\n\r\nhello\r\n.\r\nQUIT\r\n'; } > "$T_DIR/pipe2.in"
clear_sink
replies "$T_DIR/pipe2.in" > "$T_DIR/pipe2.out"
[ "$(codes < "$T_DIR/pipe2.out")" = "250 2.1.0 501 5.1.3 554 5.5.1 500 5.5.2 500 5.5.2 500 5.5.2 500 5.5.2 221 2.0.0" ]
ok $? "DATA refused in a pipeline: 554, the content lines get 500, nothing is a message" || diag "$(cat "$T_DIR/pipe2.out")"
sleep 0.2; [ "$(sink_count "$OUT")" = 0 ]; ok $? "... and nothing is delivered"

# ---- BDAT without CHUNKING ------------------------------------------------------------
chunk='RCPT TO:<evil@example.org>\r\nDATA\r\nSubject: chunk\r\n\r\nx\r\n.\r\n'
n=$(printf "$chunk" | wc -c)
{ printf 'EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT %d LAST\r\n' "$n"; printf "$chunk"; printf 'QUIT\r\n'; } > "$T_DIR/bdat.in"
clear_sink
smtp_raw "$LISTEN_PORT" "$T_DIR/bdat.in" | tr -d '\r' > "$T_DIR/bdat.out"
! grep -q '^250-CHUNKING' "$T_DIR/bdat.out" && [ "$(sed '1,/^250 ENHANCEDSTATUSCODES/d' "$T_DIR/bdat.out" | codes)" = "250 2.1.0 250 2.1.5 503 5.5.1" ]
ok $? "BDAT (CHUNKING not offered): 503 5.5.1 and the session ends; the chunk is never read as commands" || diag "$(cat "$T_DIR/bdat.out")"
sleep 0.2; [ "$(sink_count "$OUT")" = 0 ]; ok $? "... and nothing is delivered"

# ---- invalid addresses ------------------------------------------------------------------
{ printf 'EHLO x\r\n'
  printf 'MAIL FROM:<a@example.com\r\n'            # 501 unbalanced
  printf 'MAIL FROM:a@example.com>\r\n'            # 501 unbalanced
  printf 'MAIL FROM:<<a@example.com>>\r\n'         # 501
  printf 'MAIL FROM:<a b@example.com>\r\n'         # 501 space
  printf 'MAIL FROM:<a@exa mple.com>\r\n'          # 501 space
  printf 'MAIL FROM:\r\n'                          # 501 no address at all
  printf 'MAIL FROM:<a@example.com> SMTPUTF8=yes\r\n'  # 555
  printf 'MAIL FROM:<j\366rg@example.com>\r\n'     # 501 8-bit, not UTF-8
  printf 'MAIL FROM:<j\303\266rg@example.com>\r\n' # 553 UTF-8 without SMTPUTF8
  printf 'MAIL FROM:<a@ex\303\244mple.com>\r\n'    # 553 UTF-8 domain without SMTPUTF8
  printf 'MAIL FROM:<"a b"@example.com>\r\nRSET\r\n'   # 250: quoted local part
  printf 'MAIL FROM:<@relay.example:a@example.com>\r\nRSET\r\n'  # 250: source route dropped
  printf 'QUIT\r\n'; } > "$T_DIR/addr1.in"
replies "$T_DIR/addr1.in" > "$T_DIR/addr1.out"
[ "$(codes < "$T_DIR/addr1.out")" = "501 5.1.7 501 5.1.7 501 5.1.7 501 5.1.7 501 5.1.7 501 5.1.7 555 5.5.4 501 5.1.7 553 5.6.7 553 5.6.7 250 2.1.0 250 2.0.0 250 2.1.0 250 2.0.0 221 2.0.0" ]
ok $? "invalid senders: unbalanced <>, spaces, empty, 8-bit, UTF-8 without SMTPUTF8" || diag "$(cat "$T_DIR/addr1.out")"
{ printf 'EHLO x\r\nMAIL FROM:<a@example.com>\r\n'
  printf 'RCPT TO:<b@example.org\r\n'              # 501 unbalanced
  printf 'RCPT TO:b@example.org>\r\n'              # 501 unbalanced
  printf 'RCPT TO:<b c@example.org>\r\n'           # 501 space
  printf 'RCPT TO:<>\r\n'                          # 501 null recipient
  printf 'RCPT TO:<b@example.org> FOO\r\n'         # 555 parameter
  printf 'RCPT TO:<b\303\266@example.org>\r\n'     # 553 UTF-8 without SMTPUTF8
  printf 'RCPT TO:<b@ex\303\244mple.org>\r\n'      # 553
  printf 'RCPT TO:<b\366@example.org>\r\n'         # 501 8-bit, not UTF-8
  printf 'RCPT TO:<%s@example.org>\r\n' "$(head -c 65 /dev/zero | tr '\0' x)"  # 501 local part > 64
  printf 'RCPT TO:<b@%s.example>\r\n' "$(head -c 64 /dev/zero | tr '\0' x)"    # 501 label > 63
  printf 'RCPT TO:<b@example.org>\r\nDATA\r\nSubject: addr\r\n\r\nx\r\n.\r\nQUIT\r\n'; } > "$T_DIR/addr2.in"
clear_sink
replies "$T_DIR/addr2.in" > "$T_DIR/addr2.out"
[ "$(codes < "$T_DIR/addr2.out")" = "250 2.1.0 501 5.1.3 501 5.1.3 501 5.1.3 501 5.1.3 555 5.5.4 553 5.6.7 553 5.6.7 501 5.1.3 501 5.1.3 501 5.1.3 250 2.1.5 354 End d 250 2.0.0 221 2.0.0" ]
ok $? "invalid recipients: each refused with its reason" || diag "$(cat "$T_DIR/addr2.out")"
f=$(last_eml) && [ "$(grep '^RCPT' "${f%.eml}.env")" = "RCPT TO:<b@example.org>" ]
ok $? "... the message goes to the one valid recipient only"

# SMTPUTF8 declared: UTF-8 addresses are accepted and the parameter is passed on
{ printf 'EHLO x\r\nMAIL FROM:<j\303\266rg@example.com> SMTPUTF8\r\n'
  printf 'RCPT TO:<b\366@example.org>\r\n'         # 501: still not UTF-8
  printf 'RCPT TO:<b\303\266@ex\303\244mple.org>\r\nDATA\r\nSubject: utf8\r\n\r\nx\r\n.\r\nQUIT\r\n'; } > "$T_DIR/utf8.in"
clear_sink
[ "$(replies "$T_DIR/utf8.in" | codes)" = "250 2.1.0 501 5.1.3 250 2.1.5 354 End d 250 2.0.0 221 2.0.0" ] \
    && f=$(last_eml) && grep -q "^MAIL FROM:<j$(printf '\303\266')rg@example.com> SMTPUTF8$" "${f%.eml}.env" \
    && grep -q "^RCPT TO:<b$(printf '\303\266')@ex$(printf '\303\244')mple.org>$" "${f%.eml}.env"
ok $? "with SMTPUTF8: UTF-8 addresses accepted and reinjected with SMTPUTF8; invalid UTF-8 still 501"

# ---- XFORWARD: CR/LF and overlong values ----------------------------------------------------
long=$(head -c 300 /dev/zero | tr '\0' n)
{ printf 'EHLO x\r\n'
  printf 'XFORWARD NAME=evil\rMAIL\r\n'            # 500: bare CR in the line
  printf 'XFORWARD NAME=evil+0D+0AMAIL\r\n'        # 501: CR LF in xtext
  printf 'XFORWARD NAME=%s\r\n' "$long"            # 501: overlong
  printf 'XFORWARD HELO=ok.example\nIDENT=split\r\n'  # a bare LF ends the command
  printf 'XFORWARD FOO=bar\r\n'                    # 501 unknown attribute
  printf 'XFORWARD NAME=mail.example.net ADDR=192.0.2.1\r\n'
  printf 'MAIL FROM:<a@example.com>\r\nXFORWARD NAME=late\r\nRCPT TO:<b@example.org>\r\n'
  printf 'DATA\r\nSubject: xf\r\n\r\nx\r\n.\r\nQUIT\r\n'; } > "$T_DIR/xf.in"
clear_sink
replies "$T_DIR/xf.in" > "$T_DIR/xf.out"
[ "$(codes < "$T_DIR/xf.out")" = "500 5.5.2 501 5.5.4 501 5.5.4 250 2.0.0 500 5.5.2 501 5.5.4 250 2.0.0 250 2.1.0 503 5.5.1 250 2.1.5 354 End d 250 2.0.0 221 2.0.0" ]
ok $? "XFORWARD: bare CR 500, CR LF in xtext 501, overlong 501, bare LF ends the command, unknown 501, inside MAIL 503" \
    || diag "$(cat "$T_DIR/xf.out")"
f=$(last_eml)
env=${f%.eml}.env
grep -qx 'XFORWARD NAME=mail.example.net' "$env" && grep -qx 'XFORWARD ADDR=192.0.2.1' "$env" \
    && grep -qx 'XFORWARD HELO=ok.example' "$env" && ! grep -q 'evil\|split\|late\|nnnnn' "$env" \
    && ! LC_ALL=C grep -q "$(printf '\r')" "$env"
ok $? "... the next hop gets only the valid attributes, without CR or LF" || diag "$(cat "$env")"
log_has 'orig_client=mail.example.net\[192.0.2.1\]' && ! grep -q 'evil' "$T_DIR/regigated.log"
ok $? "... and the log names the valid client only"

# ---- a client that goes away at each protocol step --------------------------------------------
# send_then_close FILE: write FILE's bytes, wait for the replies, close
send_then_close() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        cat "$2" >&3; sleep 0.3; exec 3>&-' _ "$LISTEN_PORT" "$1"
}
clear_sink
: > "$T_DIR/dc0.in"
printf 'EHLO x\r\n' > "$T_DIR/dc1.in"
printf 'EHLO x\r\nMAIL FROM:<a@example.com>\r\n' > "$T_DIR/dc2.in"
printf 'EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n' > "$T_DIR/dc3.in"
printf "$HDR" > "$T_DIR/dc4.in"
printf "$HDR"'Subject: cut\r\n\r\nhalf a mess' > "$T_DIR/dc5.in"
printf "$HDR"'Subject: cut\r\n\r\nbody\r\n.' > "$T_DIR/dc6.in"
printf "$HDR"'Subject: cut\r\n\r\nbody\r\n.\r' > "$T_DIR/dc7.in"
for i in 0 1 2 3 4 5 6 7; do send_then_close "$T_DIR/dc$i.in"; done
sleep 0.5
log_has 'lost connection after CONNECT from 127.0.0.1' && log_has 'lost connection after EHLO from 127.0.0.1' \
    && log_has 'lost connection after MAIL from 127.0.0.1' && log_has 'lost connection after RCPT from 127.0.0.1'
ok $? "disconnect after greeting, EHLO, MAIL, RCPT: each logged as lost connection after that step"
log_has 'lost connection after DATA \(0 bytes\) from 127.0.0.1' && log_has 'lost connection after DATA \(27 bytes\) from' \
    && [ "$(grep -c 'lost connection after DATA (22 bytes) from' "$T_DIR/regigated.log")" = 2 ]
ok $? "disconnect after DATA and in the middle of the data (also after '.' or '.CR'): logged with the bytes received"
[ "$(sink_count "$OUT")" = 0 ]; ok $? "no incomplete message was delivered"
# after the final dot, before reading the reply: the message was complete,
# so it is delivered; the client never saw the 250 (SMTP's duplicate window)
printf "$HDR"'Subject: complete\r\n\r\nbody\r\n.\r\n' > "$T_DIR/dc8.in"
send_then_close "$T_DIR/dc8.in"
wait_files "$OUT" 1 5 && [ "$(sink_count "$OUT")" = 1 ]
ok $? "disconnect right after the final dot: the complete message is delivered once"
clear_sink
swaks_to "$LISTEN_PORT" --from a@example.com --to b@example.org --body 'still here' > "$T_DIR/after.out" 2>&1
grep -q '^<-  250 2.0.0 Ok: forwarded' "$T_DIR/after.out" && wait_files "$OUT" 1
ok $? "the daemon keeps serving: a normal message afterwards is relayed"
kill -0 "$REGIGATED_PID" && ! log_has 'killed by signal|exited with status|panic'
ok $? "no worker crashed, the master is up"
[ -z "$(spool_left "$T_DIR/spool")" ]; ok $? "the spool directory is empty"
t_done
