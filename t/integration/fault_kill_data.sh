#!/bin/bash
# t/integration/fault_kill_data.sh - a regigated worker killed with SIGKILL
# while it receives the DATA of a message from Postfix: Postfix defers the
# message and keeps it; after a flush it is delivered exactly once, intact,
# and the killed worker leaves nothing in the spool.
#
# Chain: swaks -> public smtpd -> queue -> regigate-test (smtp client)
#        -> regigated route "test" -> reinjection smtpd -> queue -> smtp-sink
#
# How the worker is caught in the middle of DATA. Postfix's smtp client
# sends a queued message at full speed, a few MB in a few milliseconds, too
# fast to look at. So the filter transport goes through a small TCP relay
# (t/helpers/slowrelay.pl) that passes the first 512 KiB of what the client
# sends at once and the rest at 256 KiB/s. The worker then spends seconds
# in DATA: it has a spool file (it has received more than
# spool_memory_limit of content) and no connection to the reinjection
# smtpd yet (it has not seen the end of the data). That is when it is
# killed. The relay sees regigated's side close and closes Postfix's side,
# just as if Postfix were talking to regigated directly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
need swaks smtp-sink ss timeout perl
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"

plan 12

FROM=sender@origin.rgtest.invalid
RCPT=rcpt@dest.rgtest.invalid
MARK="killdata-$$-$RANDOM"

pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port LISTEN_PORT
REINJECT_PORT=$PF_REINJECT_PORT   # for write_conf
SINK=$T_DIR/sink

sink_start "$PF_SINK_PORT" "$SINK"
ok $? "smtp-sink listens on $PF_SINK_PORT"

SMTP_TIMEOUT=120 write_conf "$T_DIR/regigate.conf"
start_regigated "$T_DIR/regigate.conf" && wait_port "$LISTEN_PORT" 5
ok $? "regigated listens on $LISTEN_PORT"

pf_take_port RELAY_PORT
perl "$top_srcdir/t/helpers/slowrelay.pl" "$RELAY_PORT" "$LISTEN_PORT" 524288 262144 \
    > "$T_DIR/relay.log" 2>&1 &
track $!
wait_port "$RELAY_PORT" 5
pf_route test smtp "$RELAY_PORT"
pf_configure && pf_start
ok $? "private Postfix instance started"
if [ "$T_FAILED" -gt 0 ]; then
    diag "$(tail -n 30 "$T_DIR/regigated.log" "$PF_LOG" "$T_DIR/postfix-ctl.log" 2>&1)"
    t_done
fi

# ---- one message of ~3 MB ----------------------------------------------------------
MSG=$T_DIR/msg.eml
{
    printf 'From: <%s>\nTo: <%s>\nSubject: %s\nMessage-ID: <%s@origin.rgtest.invalid>\n\n' \
        "$FROM" "$RCPT" "$MARK" "$MARK"
    printf 'marker %s\n' "$MARK"
    head -c 2200000 /dev/urandom | base64 -w 76
    printf 'end %s' "$MARK"   # no final newline: swaks adds the CRLF before "."
} > "$MSG"

has_spool_file() { ls -l "/proc/$1/fd" 2>/dev/null | grep -q "$T_DIR/spool/rg\..*(deleted)"; }
in_data() {     # in_data WORKER: receiving the content, not yet reinjecting
    has_spool_file "$1" && ! sock_pids dport "$PF_REINJECT_PORT" | grep -qx "$1"
}

timeout 60 swaks --server "127.0.0.1:$(pf_public_port test)" --helo client.rgtest.invalid \
    --from "$FROM" --to "$RCPT" --data "@$MSG" --timeout 50 > "$T_DIR/swaks.log" 2>&1
QID=$(sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$T_DIR/swaks.log" | tail -n 1)
[ -n "$QID" ]; ok $? "public smtpd accepted the message (queue id ${QID:-none})"
[ -n "$QID" ] || { diag "$(tail -n 5 "$T_DIR/swaks.log")"; QID=NO-QUEUE-ID; }

# ---- the worker in DATA, killed -------------------------------------------------------
WORKER=
for ((i = 0; i < 200; i++)); do   # up to ~10 s for the queue manager and the relay
    for p in $(sock_pids sport "$LISTEN_PORT"); do
        is_worker "$p" && in_data "$p" && WORKER=$p
    done
    [ -n "$WORKER" ] && break
    sleep 0.05
done
# a moment later the worker is still receiving: it is in the middle of DATA
sleep 0.3
[ -n "$WORKER" ] && in_data "$WORKER"
ok $? "worker ${WORKER:-none} is in the middle of DATA from Postfix's client"
[ -z "$WORKER" ] && diag "$(ss -Htnp state established 2>/dev/null | grep -E ":($LISTEN_PORT|$PF_REINJECT_PORT|$RELAY_PORT)\b")"

if [ -n "$WORKER" ]; then
    kill -9 "$WORKER"
    for ((i = 0; i < 50; i++)); do kill -0 "$WORKER" 2>/dev/null || break; sleep 0.1; done
fi
[ -n "$WORKER" ] && ! kill -0 "$WORKER" 2>/dev/null
ok $? "worker killed with SIGKILL"

pf_log_wait "postfix/regigate-test/smtp\[[0-9]+\]: $QID: to=<$RCPT>.*status=deferred" 20
ok $? "Postfix logs the delivery to the filter as deferred"
diag "$(grep -E "$QID: to=<" "$PF_LOG" | tail -n 1)"
pf_queue_ids deferred | grep -qx "$QID" && [ "$(sink_count "$SINK")" -eq 0 ]
ok $? "the message ($QID) is in the deferred queue, nothing reached the sink"
kill -0 "$REGIGATED_PID" 2>/dev/null && wait_port "$LISTEN_PORT" 2
ok $? "the regigated master survived and still listens"

# ---- retry: delivered once ------------------------------------------------------------
pf_flush
pf_wait_empty 60
ok $? "after the flush, Postfix's queue drains"
for ((i = 0; i < 50; i++)); do [ "$(sink_count "$SINK")" -ge 1 ] && break; sleep 0.1; done
f=$(sink_files "$SINK" | head -n 1)
[ "$(sink_count "$SINK")" -eq 1 ] && [ -n "$f" ] &&
    cmp -s <(awk 'f { print; next } $0 == "" { f = 1 }' "$MSG") <(sink_body "$f")
ok $? "the message arrived exactly once, body intact (sink: $(sink_count "$SINK"))"
n=$(spool_left "$T_DIR/spool" | wc -l)
[ "$n" -eq 0 ]
ok $? "no files left in regigated's spool_dir (found $n)"
[ "$T_FAILED" -gt 0 ] && diag "$(grep -F "$QID" "$T_DIR/regigated.log" "$PF_LOG" | tail -n 8)"
rm -f "$MSG"
t_done
