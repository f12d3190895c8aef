#!/bin/bash
# t/integration/fault_reinject_stop.sh - the reinjection smtpd stopped
# (SIGSTOP) in the middle of receiving a message's data.
#
# The reinjection smtpd first waits 2 s at DATA (smtpd_data_restrictions =
# sleep) so the test can find the process that serves regigated's
# connection; when its read counter (/proc/PID/io rchar) shows that the
# message content is flowing, it is stopped. regigated's writes then block
# (a 20 MB message is far more than the socket buffers hold) until
# reinject_timeout (5 s): regigated answers Postfix 451 4.4.2, Postfix
# defers and keeps the message. The stopped smtpd, continued, finds the
# connection closed before the end of the data and queues nothing ("lost
# connection after DATA"); the retry delivers the message exactly once.
#
# (The duplicate window is elsewhere: a next hop that has received the
# final "." and queued the message but stops before its 250 reaches
# regigated. Then regigated, too, answers 451 and Postfix sends the
# message again: the next hop has it twice. No content filter can close
# that window; it is SMTP's, and doc/reliability.md lists it.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
need swaks smtp-sink ss timeout
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"

plan 12

FROM=sender@origin.rgtest.invalid
RCPT=rcpt@dest.rgtest.invalid
MARK="rstop-$$-$RANDOM"

pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port LISTEN_PORT
REINJECT_PORT=$PF_REINJECT_PORT
SINK=$T_DIR/sink
sink_start "$PF_SINK_PORT" "$SINK"
REINJECT_TIMEOUT=5 SMTP_TIMEOUT=60 write_conf "$T_DIR/regigate.conf"
start_regigated "$T_DIR/regigate.conf"
ok $? "regigated listens on $LISTEN_PORT (reinject_timeout = 5)"
pf_route test smtp "$LISTEN_PORT"
# shellcheck disable=SC2034 # read by pf_configure
PF_MAIN_EXTRA="message_size_limit = 60000000"
PF_REINJECT_OPTS="-o smtpd_data_restrictions=sleep,2"
pf_configure && pf_start
ok $? "private Postfix instance, reinjection smtpd waits 2 s at DATA"
[ "$T_FAILED" -gt 0 ] && { diag "$(tail -n 20 "$PF_LOG" "$T_DIR/postfix-ctl.log")"; t_done; }

MSG=$T_DIR/msg.eml
{ printf 'From: <%s>\nTo: <%s>\nSubject: %s\n\nmarker %s\n' "$FROM" "$RCPT" "$MARK" "$MARK"
  head -c 15000000 /dev/urandom | base64 -w 76; printf 'end %s' "$MARK"; } > "$MSG"
timeout 60 swaks --server "127.0.0.1:$(pf_public_port test)" --helo client.rgtest.invalid \
    --from "$FROM" --to "$RCPT" --data "@$MSG" --timeout 50 > "$T_DIR/swaks.log" 2>&1
QID=$(sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$T_DIR/swaks.log" | tail -n 1)
[ -n "$QID" ]; ok $? "a 20 MB message accepted by Postfix (queue id ${QID:-none})"

# the smtpd process on the far end of regigated's reinjection connection
SMTPD=
for ((i = 0; i < 200; i++)); do
    SMTPD=$(ss -Htnp state established "( sport = :$PF_REINJECT_PORT )" 2>/dev/null |
        grep -o 'pid=[0-9]*' | cut -d= -f2 | head -n 1)
    [ -n "$SMTPD" ] && break
    sleep 0.05
done
rchar() { sed -n 's/^rchar: //p' "/proc/$1/io" 2>/dev/null; }
r0=$(rchar "$SMTPD"); r0=${r0:-0}
for ((i = 0; i < 1000; i++)); do        # until 1 MB of content has been read
    r=$(rchar "$SMTPD"); [ -n "$r" ] && [ $((r - r0)) -gt 1000000 ] && break
    sleep 0.01
done
[ -n "$SMTPD" ] && kill -STOP "$SMTPD"
ok $? "reinjection smtpd $SMTPD stopped after reading $(( ($(rchar "$SMTPD") - r0) / 1000 )) KB of the data"

pf_log_wait "postfix/regigate-test/smtp\[[0-9]+\]: $QID: to=<$RCPT>.*status=deferred \(host .* said: 451 4\.4\.2 " 20
ok $? "regigated: reinjection timeout, 451 4.4.2 to Postfix, deferred"
diag "$(grep -E "$QID: to=<" "$PF_LOG" | tail -n 1 | sed 's/.*status=/status=/')"
timeout 10 postqueue -c "$PF_CONF" -p > "$T_DIR/pq.out" 2>&1
grep -q "^$QID[*!]\? " "$T_DIR/pq.out" && [ "$(sink_count "$SINK")" -eq 0 ]
ok $? "postqueue -p: $QID stays queued; nothing at the sink"
mapfile -t pq < <(sed -n 2,3p "$T_DIR/pq.out"); diag "${pq[@]}"

kill -CONT "$SMTPD"
pf_log_wait "postfix/reinject/smtpd\[$SMTPD\]: lost connection after (DATA|END-OF-MESSAGE)" 15
ok $? "the continued smtpd finds the connection gone: lost connection after DATA, nothing queued"
diag "$(grep "postfix/reinject/smtpd\[$SMTPD\]: lost connection" "$PF_LOG" | tail -n 1 | sed 's/.*smtpd/smtpd/')"
kill -0 "$REGIGATED_PID" 2>/dev/null
ok $? "regigated still runs"

pf_set_reinject_opts && pf_reload
ok $? "reinjection back to normal (postfix reload)"
sleep 1
pf_flush
pf_wait_empty 60
ok $? "after a flush Postfix's queue drains"
for ((i = 0; i < 50; i++)); do [ "$(sink_count "$SINK")" -ge 1 ] && break; sleep 0.1; done
n=$(sink_files "$SINK" | xargs -r grep -l -F -- "marker $MARK" | wc -l)
[ "$n" -eq 1 ] && [ "$(sink_count "$SINK")" -eq 1 ]
ok $? "the message arrived exactly once (got $n)"
f=$(sink_files "$SINK" | head -n 1)
[ -n "$f" ] && cmp -s <(awk 'f { print; next } $0 == "" { f = 1 }' "$MSG") <(sink_body "$f")
ok $? "its body is intact"
t_done
