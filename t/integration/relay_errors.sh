#!/bin/bash
# Error paths: every failure is a clear 4xx or a deliberate 5xx, never a
# silent loss: oversize, next hop down / 4xx / 5xx / slow, malformed
# commands, the error limit, idle timeout.
. "$(dirname "$0")/lib.sh"
need swaks
plan 16

LISTEN_PORT=$(free_port); REINJECT_PORT=$(free_port)
MAXSIZE=2000 SMTP_TIMEOUT=2 REINJECT_TIMEOUT=2 write_conf "$T_DIR/rg.conf"
start_regigated "$T_DIR/rg.conf"; ok $? "regigated started"

# next hop down: 451, and the log says why
swaks_to "$LISTEN_PORT" --from a@example.com --to b@example.org --body x > "$T_DIR/s1.out" 2>&1
grep -q '^<\*\* 451 4.4.1 Error: cannot reach reinjection host' "$T_DIR/s1.out"
ok $? "next hop down: 451 4.4.1 upstream"
log_has 'status=deferred reply=\(451 4.4.1 Error: cannot reach reinjection host: connect to 127.0.0.1:[0-9]+: Connection refused\)'
ok $? "next hop down: logged as deferred with the reason"

# oversize: refused at MAIL (SIZE=) and in DATA
start_testsink "$REINJECT_PORT" "$T_DIR/out"
printf 'EHLO x\r\nMAIL FROM:<a@example.com> SIZE=5000\r\nQUIT\r\n' > "$T_DIR/size.in"
smtp_raw "$LISTEN_PORT" "$T_DIR/size.in" | grep -q '^552 5.3.4'
ok $? "SIZE= above max_message_size: 552 5.3.4 at MAIL"
head -c 3000 /dev/zero | tr '\0' a | fold -w 70 > "$T_DIR/big.txt"
swaks_to "$LISTEN_PORT" --from a@example.com --to b@example.org --body @"$T_DIR/big.txt" > "$T_DIR/s2.out" 2>&1
grep -q '^<\*\* 552 5.3.4' "$T_DIR/s2.out"; ok $? "oversize data: 552 5.3.4 after DATA"
[ "$(sink_count "$T_DIR/out")" = 0 ]; ok $? "oversize message not delivered"

# next hop answers 5xx: passed upstream as 5xx; 4xx: 451
t_stop_pid "${T_PIDS[-1]}"
start_testsink "$REINJECT_PORT" "$T_DIR/out5" -R "554 5.7.1 rejected by policy"
swaks_to "$LISTEN_PORT" --from a@example.com --to b@example.org --body x > "$T_DIR/s3.out" 2>&1
grep -q '^<\*\* 554 5.7.1 rejected by policy' "$T_DIR/s3.out"; ok $? "downstream 5xx passed upstream as the same 5xx"
t_stop_pid "${T_PIDS[-1]}"
start_testsink "$REINJECT_PORT" "$T_DIR/out4" -R "452 4.3.1 insufficient storage"
swaks_to "$LISTEN_PORT" --from a@example.com --to b@example.org --body x > "$T_DIR/s4.out" 2>&1
grep -q '^<\*\* 451 4.3.0 Error: next hop said: 452 4.3.1 insufficient storage' "$T_DIR/s4.out"
ok $? "downstream 4xx: 451 upstream with the reason"

# one recipient refused downstream (5xx), others fine: SMTP gets the 5xx
t_stop_pid "${T_PIDS[-1]}"
start_testsink "$REINJECT_PORT" "$T_DIR/outm" -r "bad@example.org=550 5.1.1 no such user"
swaks_to "$LISTEN_PORT" --from a@example.com --to good@example.org,bad@example.org --body x > "$T_DIR/s5.out" 2>&1
grep -q '^<\*\* 550 5.1.1 no such user' "$T_DIR/s5.out"; ok $? "mixed 2xx/5xx with SMTP: the 5xx (sender is told)"
log_has 'to=<good@example.org> .*status=sent' && log_has 'to=<bad@example.org> .*status=bounced'
ok $? "mixed outcome: one log line per outcome"

# slow next hop beyond reinject_timeout: 451 4.4.2
t_stop_pid "${T_PIDS[-1]}"
start_testsink "$REINJECT_PORT" "$T_DIR/outs" -s 4
swaks_to "$LISTEN_PORT" --from a@example.com --to b@example.org --body x > "$T_DIR/s6.out" 2>&1
grep -q '^<\*\* 451 4.4.2 Error: timeout with reinjection host' "$T_DIR/s6.out"
ok $? "next hop slower than reinject_timeout: 451 4.4.2"

# malformed commands get clear replies; the error limit ends the session
printf 'EHLO x\r\nMAIL FROM:<a@@b>\r\nRCPT TO:<c@d.example>\r\nMAIL FROM:<a@example.com> FOO=BAR\r\nMAIL FROM:<jörg@example.com>\r\nBDAT 10 LAST\r\n' > "$T_DIR/bad.in"
smtp_raw "$LISTEN_PORT" "$T_DIR/bad.in" | tr -d '\r' | sed '1,/ENHANCEDSTATUSCODES/d' > "$T_DIR/bad.out"
[ "$(sed -n 1p "$T_DIR/bad.out" | cut -c1-9)" = "501 5.1.7" ] && [ "$(sed -n 2p "$T_DIR/bad.out" | cut -c1-9)" = "503 5.5.1" ] \
  && [ "$(sed -n 3p "$T_DIR/bad.out" | cut -c1-9)" = "555 5.5.4" ] && [ "$(sed -n 4p "$T_DIR/bad.out" | cut -c1-9)" = "553 5.6.7" ] \
  && [ "$(sed -n 5p "$T_DIR/bad.out" | cut -c1-9)" = "503 5.5.1" ]
ok $? "bad sender 501, RCPT before MAIL 503, unknown param 555, UTF-8 without SMTPUTF8 553, BDAT refused"
{ printf 'EHLO x\r\n'; for i in $(seq 1 25); do printf 'FOO\r\n'; done; } > "$T_DIR/junk.in"
smtp_raw "$LISTEN_PORT" "$T_DIR/junk.in" | tr -d '\r' > "$T_DIR/junk.out"
tail -1 "$T_DIR/junk.out" | grep -q '^421 4.7.0 .*too many errors' && [ "$(grep -c '^500' "$T_DIR/junk.out")" = 20 ]
ok $? "20 errors, then 421 and disconnect"
{ printf 'EHLO x\r\nNOOP '; head -c 5000 /dev/zero | tr '\0' a; printf '\r\nNOOP\r\nQUIT\r\n'; } > "$T_DIR/long.in"
smtp_raw "$LISTEN_PORT" "$T_DIR/long.in" | tr -d '\r' > "$T_DIR/long.out"
grep -q '^500 5.5.2 Error: line too long' "$T_DIR/long.out" && grep -q '^221' "$T_DIR/long.out"
ok $? "a 5000-byte line: 500 5.5.2, the session goes on"
printf 'EHLO x\r\nNO\0OP\r\nQUIT\r\n' > "$T_DIR/nul.in"
smtp_raw "$LISTEN_PORT" "$T_DIR/nul.in" | tr -d '\r' | grep -q '^500 5.5.2 Error: bad characters'
ok $? "NUL in a command: 500 5.5.2"

# idle client: 421 after smtp_timeout (2 s)
start=$(date +%s)
out=$(RAW_TIMEOUT=8 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "EHLO x\r\n" >&3; cat <&3' _ "$LISTEN_PORT" | tr -d '\r' | tail -1)
el=$(( $(date +%s) - start ))
[[ $out == "421 4.4.2 "* ]] && [ "$el" -le 5 ]; ok $? "idle client disconnected with 421 4.4.2 after smtp_timeout (${el}s)"
t_done
