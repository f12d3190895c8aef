#!/bin/bash
# t/integration/fault_slowloris.sh - every worker of the pool busy with a
# slow client (slowloris: max_servers connections that send one byte every
# DRIP seconds and never finish a line, reconnecting when dropped) while
# real mail from Postfix waits.
#
# What happens: Postfix's smtp client connects to regigated; the kernel
# completes the connection (listen backlog) but no worker is free to
# accept it, so Postfix waits for the greeting (smtp_helo_timeout, 300 s
# by default) with the message in its active queue. A command line must
# arrive complete within smtp_timeout (and each line of DATA too), so the
# slow clients are dropped with "421 4.4.2 timeout exceeded" after
# smtp_timeout; a freed worker accepts the oldest waiting connection first
# (the backlog is FIFO), which is Postfix's, even though the slow clients
# reconnect at once. So the real mail is served, late by at most about
# smtp_timeout, not deferred. (Before the whole-line deadline each byte
# restarted the timeout and the slow clients held the pool until
# child_timeout, 540 s by default; Postfix gave up after 300 s and
# deferred the message.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
need swaks smtp-sink ss timeout
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"

plan 10

FROM=sender@origin.rgtest.invalid
RCPT=rcpt@dest.rgtest.invalid
TIMEOUT=6       # smtp_timeout
DRIP=2          # one byte every DRIP seconds: each within the timeout
MARK="slow-$$-$RANDOM"

pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port LISTEN_PORT
REINJECT_PORT=$PF_REINJECT_PORT
SINK=$T_DIR/sink
sink_start "$PF_SINK_PORT" "$SINK"
MAX_SERVERS=2 SMTP_TIMEOUT=$TIMEOUT EXTRA_GLOBAL="child_timeout = 600" write_conf "$T_DIR/regigate.conf"
start_regigated "$T_DIR/regigate.conf"
ok $? "regigated listens on $LISTEN_PORT with max_servers=2, smtp_timeout=$TIMEOUT"
pf_route test smtp "$LISTEN_PORT"
pf_configure && pf_start
ok $? "private Postfix instance started"
[ "$T_FAILED" -gt 0 ] && { diag "$(tail -n 20 "$PF_LOG" "$T_DIR/postfix-ctl.log")"; t_done; }

# slowloris: connect, drip "EHLO xxxx..." a byte every DRIP s, never a line
# end; reconnect when the server drops the connection
slowloris() {
    trap '' PIPE
    local s="EHLO slow.example.com.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" i
    while :; do
        exec 3<>"/dev/tcp/127.0.0.1/$LISTEN_PORT" || { sleep 0.2; continue; }
        echo "connect $(date +%s.%N)" >> "$T_DIR/slowloris.$1"
        for ((i = 0; i < ${#s}; i++)); do
            printf '%s' "${s:i:1}" >&3 2>/dev/null || break
            sleep "$DRIP"
        done
        exec 3>&-
    done
}
busy() { ss -Htn state established "( sport = :$LISTEN_PORT )" 2>/dev/null | wc -l; }
for c in 1 2; do
    slowloris "$c" &
    track $!
done
for ((i = 0; i < 50; i++)); do [ "$(busy)" -ge 2 ] && break; sleep 0.1; done
sleep 0.5
[ "$(busy)" -ge 2 ] && [ "$(ss -Hltn "sport = :$LISTEN_PORT" | awk '{print $2}')" -eq 0 ]
ok $? "two slow clients hold both workers (nothing waiting in the backlog yet)"

T0=$(date +%s)
printf 'From: <%s>\nTo: <%s>\nSubject: %s\n\nmarker %s\n' "$FROM" "$RCPT" "$MARK" "$MARK" > "$T_DIR/m.eml"
timeout 40 swaks --server "127.0.0.1:$(pf_public_port test)" --helo client.rgtest.invalid \
    --from "$FROM" --to "$RCPT" --data "@$T_DIR/m.eml" --timeout 30 > "$T_DIR/swaks.log" 2>&1
QID=$(sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$T_DIR/swaks.log" | tail -n 1)
[ -n "$QID" ]; ok $? "Postfix accepted the real mail (queue id ${QID:-none})"

# Postfix's connection waits in regigated's listen backlog (Recv-Q of the
# listening socket), the message in Postfix's active queue
for ((i = 0; i < 30; i++)); do
    [ "$(ss -Hltn "sport = :$LISTEN_PORT" | awk '{print $2}')" -ge 1 ] && break; sleep 0.1
done
timeout 10 postqueue -c "$PF_CONF" -p > "$T_DIR/pq.out" 2>&1
[ "$i" -lt 30 ] && grep -q "^$QID\*" "$T_DIR/pq.out" && [ "$(sink_count "$SINK")" -eq 0 ]
ok $? "while the pool is held: the delivery waits in regigated's backlog, postqueue -p shows $QID active (*)"
mapfile -t pq < <(sed -n 2p "$T_DIR/pq.out"); diag "${pq[@]}"

pf_log_wait "postfix/regigate-test/smtp\[[0-9]+\]: $QID: to=<$RCPT>.*status=sent" $((TIMEOUT * 3))
ok $? "the real mail is served once a slow client times out"
T1=$(date +%s)
diag "served after $((T1 - T0)) s (smtp_timeout=$TIMEOUT, drip every ${DRIP} s)"
[ $((T1 - T0)) -le $((TIMEOUT + 4)) ]
ok $? "... within smtp_timeout + a few seconds (took $((T1 - T0)) s)"
for ((i = 0; i < 50; i++)); do [ "$(sink_count "$SINK")" -ge 1 ] && break; sleep 0.1; done
[ "$(sink_count "$SINK")" -eq 1 ] && ! grep -q "$QID: to=<.*status=deferred" "$PF_LOG"
ok $? "delivered exactly once, never deferred"
grep -Eq 'timeout after [A-Z]+ from 127.0.0.1' "$T_DIR/regigated.log"
ok $? "regigated logged the slow clients' timeouts"
kill -0 "$REGIGATED_PID" 2>/dev/null && [ "$(grep -c 'killed by' "$T_DIR/regigated.log")" -eq 0 ]
ok $? "regigated runs, no worker was killed (no watchdog needed)"
diag "slow connections made: $(cat "$T_DIR"/slowloris.* | wc -l)"
t_done
