#!/bin/bash
# Pass-through relay with real peers: swaks and smtp-source send through
# regigated to rg-testsink / smtp-sink; delivered bytes equal sent bytes.
. "$(dirname "$0")/lib.sh"
need swaks smtp-source smtp-sink
plan 17

LISTEN_PORT=$(free_port); REINJECT_PORT=$(free_port)
write_conf "$T_DIR/rg.conf"
start_testsink "$REINJECT_PORT" "$T_DIR/out"
start_regigated "$T_DIR/rg.conf"; ok $? "regigated listens on 127.0.0.1:$LISTEN_PORT"

# 1. a message with a dot line, 8-bit text, a long line: byte for byte
{
    printf 'From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n'
    printf 'Message-ID: <t1@example.com>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n'
    printf 'Content-Transfer-Encoding: 8bit\n\nGrüße aus Köln.\n.\n..two dots\n. dot space\n'
    head -c 900 /dev/zero | tr '\0' x; echo
    printf 'last line\n'
} > "$T_DIR/m1.txt"
crlf "$T_DIR/m1.txt" > "$T_DIR/m1.eml"
# swaks ends the data with CRLF "." CRLF after the file, which ends in CRLF:
# the message it sends has one more empty line
{ cat "$T_DIR/m1.eml"; printf '\r\n'; } > "$T_DIR/m1.sent"
swaks_to "$LISTEN_PORT" --from alice@example.com --to bob@example.org \
    --data "@$T_DIR/m1.eml" > "$T_DIR/swaks1.out" 2>&1
grep -q '^<-  250 2.0.0 Ok: forwarded (250 2.0.0 Ok: queued as TS' "$T_DIR/swaks1.out"
ok $? "250 upstream quotes the downstream queue id"
wait_files "$T_DIR/out" 1
f=$(sink_files "$T_DIR/out" | head -1)
cmp -s "$T_DIR/m1.sent" "$f"; ok $? "delivered bytes equal sent bytes"
grep -q '^MAIL FROM:<alice@example.com>' "${f%.eml}.env"; ok $? "envelope sender passed on"
log_has "route=test client=127.0.0.1 from=<alice@example.com> to=<bob@example.org> size=$(stat -c %s "$T_DIR/m1.sent") action=forward rule=\{\} status=sent"
ok $? "one log line with envelope, size, action and status"

# 2. several recipients in one transaction arrive once with all recipients
rm -f "$T_DIR"/out/msg-*
swaks_to "$LISTEN_PORT" --from a@example.com --to r1@example.org,r2@example.org,r3@example.net \
    --body "multi" > "$T_DIR/swaks2.out" 2>&1
wait_files "$T_DIR/out" 1
f=$(sink_files "$T_DIR/out" | head -1)
[ "$(sink_count "$T_DIR/out")" = 1 ] && [ "$(grep -c '^RCPT TO:' "${f%.eml}.env")" = 3 ]
ok $? "three recipients: one copy downstream with three RCPTs"

# 3. a pipelined session with XFORWARD: queue id in the log, attributes passed on
rm -f "$T_DIR"/out/msg-*
printf 'EHLO client.example\r\nXFORWARD NAME=mx.example.com ADDR=192.0.2.7 PROTO=ESMTP HELO=mx.example.com\r\nXFORWARD IDENT=4AbCdE12345 SOURCE=REMOTE\r\nMAIL FROM:<x@example.com> BODY=8BITMIME SIZE=40\r\nRCPT TO:<y@example.org>\r\nDATA\r\nSubject: p\r\n\r\npipelined\r\n.\r\nQUIT\r\n' > "$T_DIR/pipe.in"
smtp_raw "$LISTEN_PORT" "$T_DIR/pipe.in" > "$T_DIR/pipe.out"
tr -d '\r' < "$T_DIR/pipe.out" | grep -c '^250 ' | grep -qx 6
ok $? "pipelined group: every command answered"
wait_files "$T_DIR/out" 1
f=$(sink_files "$T_DIR/out" | head -1)
grep -q 'XFORWARD IDENT=4AbCdE12345' "${f%.eml}.env" && grep -q 'XFORWARD ADDR=192.0.2.7' "${f%.eml}.env"
ok $? "XFORWARD attributes passed downstream"
grep -q 'BODY=8BITMIME' "${f%.eml}.env"; ok $? "BODY=8BITMIME passed downstream"
log_has '4AbCdE12345: route=test .* from=<x@example.com> to=<y@example.org>'
ok $? "log line carries the queue id from XFORWARD IDENT"

# 4. queue id from the top-most Received header when there is no XFORWARD
printf 'Received: from a.example (a.example [192.0.2.1])\n\tby mx.example.com (Postfix) with ESMTP id 4ZzYyXx987\n\tfor <y@example.org>; Mon,  1 Jan 2024 00:00:00 +0000 (UTC)\nSubject: r\n\nbody\n' > "$T_DIR/m4.txt"
crlf "$T_DIR/m4.txt" > "$T_DIR/m4.eml"
swaks_to "$LISTEN_PORT" --from x@example.com --to y@example.org --data "@$T_DIR/m4.eml" >/dev/null 2>&1
log_has '4ZzYyXx987: route=test'; ok $? "queue id taken from the Received header"

# 5. 200 messages with smtp-source, 8 sessions, into Postfix's smtp-sink
SINK_PORT=$(free_port)
timeout 60 smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 100 > "$T_DIR/smtp-sink.out" 2>&1 &
track $!
wait_port "$SINK_PORT" 10
REINJECT_PORT=$SINK_PORT LISTEN_PORT=$(free_port)
OLD_PID=$REGIGATED_PID
write_conf "$T_DIR/rg2.conf"
sed -i "s|$T_DIR/regigated.pid|$T_DIR/regigated2.pid|" "$T_DIR/rg2.conf"
start_regigated "$T_DIR/rg2.conf"; ok $? "second instance towards smtp-sink"
timeout 60 smtp-source -s 8 -m 200 -c -f from@example.com -t to@example.net "127.0.0.1:$LISTEN_PORT" > "$T_DIR/source.out" 2>&1
ok $? "smtp-source sent 200 messages with 8 sessions without error"
for i in $(seq 1 100); do grep -q 'mesg=200' "$T_DIR/smtp-sink.out" && break; sleep 0.1; done
grep -q 'mesg=200' "$T_DIR/smtp-sink.out"; ok $? "smtp-sink counted exactly 200 messages"
[ "$(grep -cF 'action=forward rule={} status=sent' "$T_DIR/regigated.log")" -ge 200 ]
ok $? "a log line for every message"

# 6. the spool is empty afterwards, and workers run unprivileged when root
[ -z "$(spool_left "$T_DIR/spool")" ]; ok $? "nothing left in the spool directory"
if [ "$(id -u)" = 0 ]; then
    kids=$(pgrep -P "$REGIGATED_PID" | head -1)
    [ -n "$kids" ] && [ "$(stat -c %U "/proc/$kids")" = nobody ] && [ "$(stat -c %U "/proc/$REGIGATED_PID")" = nobody ]
    ok $? "master and workers run as the configured user"
else
    T_NUM=$((T_NUM + 1)); echo "ok $T_NUM # SKIP not root: no privilege drop to check"
fi
t_done
