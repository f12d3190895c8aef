#!/bin/bash
# SMTP smuggling: end-of-data look-alikes inside the data ("\n.\n", "\r.\r",
# "\r\n.\n", "\n.\r\n") never end a message in regigated, and what it sends
# on is canonical, so a lenient next hop (Postfix's smtp-sink treats a bare
# LF as a line end) cannot be made to see a second, smuggled message.
. "$(dirname "$0")/lib.sh"
need smtp-sink
plan 9

LISTEN_PORT=$(free_port); SINK_PORT=$(free_port); CAP_PORT=$(free_port)
u=; [ "$(id -u)" = 0 ] && u="-u nobody"
mkdir -p "$T_DIR/dump"; chmod 777 "$T_DIR/dump"
timeout 120 smtp-sink $u -c -d "$T_DIR/dump/%H%M%S." "127.0.0.1:$SINK_PORT" 50 > "$T_DIR/sink.out" 2>&1 &
track $!
wait_port "$SINK_PORT" 5
REINJECT_PORT=$SINK_PORT write_conf "$T_DIR/rg.conf"
start_regigated "$T_DIR/rg.conf"; ok $? "regigated in front of smtp-sink"

n=0
for variant in '\n.\n' '\r.\r' '\r\n.\n' '\n.\r\n' '\r\n.\r'; do
    n=$((n + 1))
    printf "EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: s$n\r\n\r\nbefore${variant}MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n" > "$T_DIR/v$n.in"
    smtp_raw "$LISTEN_PORT" "$T_DIR/v$n.in" | tr -d '\r' > "$T_DIR/v$n.out"
    # exactly one DATA reply: the whole thing was one message
    [ "$(grep -c '^250 2.0.0 Ok: forwarded' "$T_DIR/v$n.out")" = 1 ] && ! grep -q '^5' "$T_DIR/v$n.out"
    ok $? "variant $variant: one message upstream"
done
for i in $(seq 1 50); do grep -q "mesg=$n" "$T_DIR/sink.out" && break; sleep 0.1; done
sleep 0.3
tail -c 100 "$T_DIR/sink.out" | grep -q "mesg=$n\b" && ! tail -c 100 "$T_DIR/sink.out" | grep -q "mesg=$((n + 1))"
ok $? "smtp-sink counted exactly $n messages: nothing smuggled past regigated"
grep -lr 'victim@example.org' "$T_DIR/dump" | xargs -r grep -l '^X-Rcpt-Args: <victim' > "$T_DIR/victims"
[ ! -s "$T_DIR/victims" ]; ok $? "no dump has the smuggled recipient in its envelope"

# what regigated stored and sent: CRLF-only, the look-alike kept as content
start_testsink "$CAP_PORT" "$T_DIR/cap"
t_stop_pid "$REGIGATED_PID"
REINJECT_PORT=$CAP_PORT write_conf "$T_DIR/rg.conf"
start_regigated "$T_DIR/rg.conf"
smtp_raw "$LISTEN_PORT" "$T_DIR/v1.in" > /dev/null
wait_files "$T_DIR/cap" 1
f=$(sink_files "$T_DIR/cap" | head -1)
printf 'Subject: s1\r\n\r\nbefore\r\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n' > "$T_DIR/expect1"
cmp -s "$T_DIR/expect1" "$f"; ok $? "bare LFs normalised to CRLF, '.' line kept as content"
t_done
