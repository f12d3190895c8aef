#!/bin/bash
# LMTP input: one reply per recipient after DATA; process = recipient splits
# a message into one downstream transaction per recipient.
. "$(dirname "$0")/lib.sh"
need swaks
plan 8

LISTEN_PORT=$(free_port); REINJECT_PORT=$(free_port)
PROTOCOL=lmtp write_conf "$T_DIR/rg.conf"
start_testsink "$REINJECT_PORT" "$T_DIR/out" -r "gone@example.org=550 5.1.1 <gone@example.org>: user unknown" \
    -r "full@example.org=452 4.2.2 <full@example.org>: mailbox full"
start_regigated "$T_DIR/rg.conf"; ok $? "regigated (LMTP) started"

printf 'LHLO postfix.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<ok1@example.org>\r\nRCPT TO:<gone@example.org>\r\nRCPT TO:<full@example.org>\r\nRCPT TO:<ok2@example.org>\r\nDATA\r\nSubject: lmtp\r\n\r\nhello\r\n.\r\nQUIT\r\n' > "$T_DIR/l.in"
smtp_raw "$LISTEN_PORT" "$T_DIR/l.in" | tr -d '\r' | sed '1,/^354/d' > "$T_DIR/l.out"
[ "$(sed -n 1p "$T_DIR/l.out" | cut -c1-4)" = "250 " ] && [ "$(sed -n 2p "$T_DIR/l.out")" = "550 5.1.1 <gone@example.org>: user unknown" ] \
  && [ "$(sed -n 3p "$T_DIR/l.out" | cut -c1-10)" = "451 4.3.0 " ] && [ "$(sed -n 4p "$T_DIR/l.out" | cut -c1-4)" = "250 " ] \
  && [ "$(sed -n 5p "$T_DIR/l.out" | cut -c1-4)" = "221 " ]
ok $? "four recipients, four replies after DATA in RCPT order (250, 550, 451, 250)"
wait_files "$T_DIR/out" 1
f=$(sink_files "$T_DIR/out" | head -1)
[ "$(grep -c '^RCPT' "${f%.eml}.env")" = 2 ]; ok $? "one downstream copy for the two accepted recipients"

printf 'EHLO x\r\nQUIT\r\n' > "$T_DIR/e.in"
smtp_raw "$LISTEN_PORT" "$T_DIR/e.in" | tr -d '\r' | grep -q '^500 5.5.1 Error: this is an LMTP server'
ok $? "EHLO refused on an LMTP listener"

# swaks as an LMTP client
swaks_to "$LISTEN_PORT" --protocol LMTP --from a@example.com --to x@example.org,y@example.org --body hi > "$T_DIR/s.out" 2>&1
[ "$(grep -c '^<-  250 2.0.0 Ok: forwarded' "$T_DIR/s.out")" = 2 ]; ok $? "swaks LMTP: a 250 per recipient"

# process = recipient: one downstream transaction per recipient
t_stop_pid "$REGIGATED_PID"
rm -f "$T_DIR"/out/msg-*
PROTOCOL=smtp PROCESS=recipient write_conf "$T_DIR/rg.conf"
start_regigated "$T_DIR/rg.conf"; ok $? "regigated (SMTP, process = recipient) started"
swaks_to "$LISTEN_PORT" --from a@example.com --to p1@example.org,p2@example.org,p3@example.org --body split > "$T_DIR/p.out" 2>&1
grep -q '^<-  250 2.0.0 Ok: forwarded' "$T_DIR/p.out"; ok $? "split message accepted upstream"
wait_files "$T_DIR/out" 3
[ "$(sink_count "$T_DIR/out")" = 3 ] && [ "$(cat "$T_DIR"/out/msg-*.env | grep -c '^RCPT')" = 3 ] \
  && [ "$(sort -u "$T_DIR"/out/msg-*.env | grep -c '^RCPT')" = 3 ]
ok $? "three copies downstream, one recipient each"
t_done
