#!/bin/bash
# t/integration/fault_kill_worker.sh - a regigated worker killed with SIGKILL
# in the middle of a transaction must not lose the message: Postfix keeps it
# queued (deferred), retries, and it is delivered exactly once.
#
# Chain: swaks -> public smtpd -> queue -> regigate-test (smtp client)
#        -> regigated route "test" -> reinjection smtpd -> queue -> smtp-sink
#
# How the worker is caught mid-transaction. The filter leg is driven by
# Postfix's own smtp client, which sends a queued message at full speed, so
# slowing down the submitting client (swaks) does not help: the message is
# already in the queue before the filter sees a byte of it. What the test
# controls is the far side of the worker: regigated answers the end of DATA
# only after the reinjection smtpd has accepted the message. So the
# reinjection smtpd is first configured to stall for STALL seconds when it
# receives the DATA command (smtpd_data_restrictions = sleep STALL), i.e.
# before any message content is handed to it; the worker then sits in the
# transaction, its upstream Postfix client waiting for the final reply.
# STALL (15 s) and regigated's reinject_timeout (120 s) are far above the
# time the test needs to find and kill the worker (well under a second), so
# only the kill can end the transaction: without it the message would be
# delivered after STALL seconds and the "deferred" checks fail. The stalled
# reinjection smtpd does not notice that its client died until its sleep is
# over; only then does its half-received message (an incoming queue file
# without content) go away, which is why the queue needs up to STALL
# seconds to drain at the end.
#
# The busy worker is the child of the regigated master (REGIGATED_PID) that
# owns an ESTABLISHED socket whose local port is the route's listen port
# (`ss -tnp`); it must also have a connection to the reinjection port, which
# shows it is past the upstream's data and inside the reinjection.
#
# Stalling at DATA (not at end-of-data) matters: had the reinjection smtpd
# already received the whole message when the worker dies, it could still
# queue it while Postfix retries the original, the classic SMTP duplicate
# window, which is not the daemon's fault and not what this test is about.
#
# After the kill: Postfix must log the delivery to the filter as deferred
# and still hold the message; nothing may have reached the sink; the
# regigated master must still be up. Then the stall is removed (master.cf
# rewritten, `postfix reload`), the deferred queue flushed, and the message
# must arrive at the sink exactly once, intact, with the queue draining, and
# the killed worker must not have left a spool file behind.
#
# Second case: the worker killed while it waits for the key provider. A
# second route, "enc", encrypts everything with a real regigate-provider.
# The provider is stopped (SIGSTOP): the kernel still completes the TCP
# handshake, so the worker sits in its HTTPS request (provider_timeout is
# far above the test's needs). The worker that holds both the Postfix
# connection of route enc and a connection to the provider is killed;
# Postfix must defer the message and keep it; after SIGCONT and a flush it
# arrives exactly once, encrypted. (A provider transaction created before
# the kill is simply reused on the retry: replayed=yes in the log.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"
. "$(dirname "$0")/provider_lib.sh"

pf_require
need swaks smtp-sink ss timeout
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"
[ -x "$PROVIDER" ] || skip_all "regigate-provider not built ($PROVIDER)"

plan 26

FROM=sender@origin.rgtest.invalid
RCPT=rcpt@dest.rgtest.invalid
STALL=15
MARK="kill-$$-$RANDOM"

pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port LISTEN_PORT
REINJECT_PORT=$PF_REINJECT_PORT   # for write_conf
SINK=$T_DIR/sink

sink_start "$PF_SINK_PORT" "$SINK"
ok $? "smtp-sink listens on $PF_SINK_PORT"

# reinject_timeout and smtp_timeout well above STALL: only the kill may end
# the transaction
REINJECT_TIMEOUT=120 SMTP_TIMEOUT=120 write_conf "$T_DIR/regigate.conf"
pf_take_port ENC_PORT
prov_init "$FROM" "$RCPT" && {
    printf '\n[route enc]\nlisten = 127.0.0.1:%s\nreinject = 127.0.0.1:%s\nrules = %s\n' \
        "$ENC_PORT" "$PF_REINJECT_PORT" "$T_DIR/enc.json"
    PROV_TIMEOUT=120 prov_route_lines
} >> "$T_DIR/regigate.conf" &&
    echo '{ "rules": [], "default": { "action": "encrypt" } }' > "$T_DIR/enc.json" &&
    prov_certs "$T_DIR/regigate.conf" enc
ok $? "provider up, route enc (encrypt everything) has its certificate" ||
    diag "$(cat "$PROV_DIR"/*.out "$PROV_DIR"/ctl.err 2>/dev/null)"
start_regigated "$T_DIR/regigate.conf" && wait_port "$ENC_PORT" 5
ok $? "regigated listens on $LISTEN_PORT and $ENC_PORT"

pf_route test smtp "$LISTEN_PORT"
pf_route enc smtp "$ENC_PORT"
# shellcheck disable=SC2034 # read by pf_configure
PF_REINJECT_OPTS="-o smtpd_data_restrictions=sleep,$STALL"
pf_configure && pf_start
ok $? "private Postfix instance started, reinjection stalls ${STALL}s at DATA"
if [ "$T_FAILED" -gt 0 ]; then
    diag "$(tail -n 30 "$T_DIR/regigated.log" "$PF_LOG" "$T_DIR/postfix-ctl.log" 2>&1)"
    t_done
fi

# ---- one message, ~300 KB -----------------------------------------------------
MSG=$T_DIR/msg.eml
{
    printf 'From: <%s>\nTo: <%s>\nSubject: %s\nMessage-ID: <%s@origin.rgtest.invalid>\n\n' \
        "$FROM" "$RCPT" "$MARK" "$MARK"
    printf 'marker %s\n' "$MARK"
    head -c 220000 /dev/urandom | base64 -w 76
    printf '.\n..\nend %s' "$MARK"   # no final newline: swaks adds the CRLF before "."
} > "$MSG"
timeout 40 swaks --server "127.0.0.1:$(pf_public_port test)" --helo client.rgtest.invalid \
    --from "$FROM" --to "$RCPT" --data "@$MSG" --timeout 30 > "$T_DIR/swaks.log" 2>&1
QID=$(sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$T_DIR/swaks.log" | tail -n 1)
[ -n "$QID" ]; ok $? "public smtpd accepted the message (queue id ${QID:-none})"
[ -n "$QID" ] || { diag "$(cat "$T_DIR/swaks.log")"; QID=NO-QUEUE-ID; }

# ---- find the busy worker -------------------------------------------------------

WORKER=
for ((i = 0; i < 150; i++)); do      # up to 15 s
    for p in $(sock_pids sport "$LISTEN_PORT"); do
        is_worker "$p" || continue
        sock_pids dport "$PF_REINJECT_PORT" | grep -qx "$p" && WORKER=$p && break
    done
    [ -n "$WORKER" ] && break
    sleep 0.1
done
[ -n "$WORKER" ]
ok $? "a regigated worker (pid ${WORKER:-none}) holds the Postfix connection and is inside the reinjection"
if [ -z "$WORKER" ]; then
    diag "$(echo "ss:"; ss -Htnp state established 2>/dev/null | grep -E ":($LISTEN_PORT|$PF_REINJECT_PORT)\b"
           tail -n 20 "$PF_LOG"; tail -n 10 "$T_DIR/regigated.log")"
fi

pf_queue_ids | grep -qx "$QID" && [ "$(sink_count "$SINK")" -eq 0 ]
ok $? "before the kill: $QID still in Postfix's queue, nothing at the sink"

# ---- kill it ----------------------------------------------------------------------
if [ -n "$WORKER" ]; then
    kill -9 "$WORKER"
    for ((i = 0; i < 50; i++)); do kill -0 "$WORKER" 2>/dev/null || break; sleep 0.1; done
fi
[ -n "$WORKER" ] && ! kill -0 "$WORKER" 2>/dev/null
ok $? "worker $WORKER killed with SIGKILL"

pf_log_wait "postfix/regigate-test/smtp\[[0-9]+\]: $QID: to=<$RCPT>.*status=deferred" 15
ok $? "Postfix logs the delivery to the filter as deferred"
diag "$(grep -E "$QID: to=<" "$PF_LOG" | tail -n 1)"

pf_queue_ids deferred | grep -qx "$QID"
ok $? "the message ($QID) is in Postfix's deferred queue"
[ "$(sink_count "$SINK")" -eq 0 ]
ok $? "nothing reached the sink"

kill -0 "$REGIGATED_PID" 2>/dev/null && wait_port "$LISTEN_PORT" 2
ok $? "the regigated master survived and still listens"

# ---- back to normal: no stall, flush, deliver once ----------------------------
pf_set_reinject_opts && pf_reload
ok $? "reinjection stall removed (postfix reload)"
sleep 1                               # let the master restart its listeners
pf_flush
pf_wait_empty $((STALL + 20))
ok $? "after the flush, Postfix's queue drains"
for ((i = 0; i < 30; i++)); do [ "$(sink_count "$SINK")" -ge 1 ] && break; sleep 0.1; done
n=$(sink_files "$SINK" | xargs -r grep -l -F -- "marker $MARK" | wc -l)
[ "$n" -eq 1 ] && [ "$(sink_count "$SINK")" -eq 1 ]
ok $? "the message arrived exactly once (got $n)"
f=$(sink_files "$SINK" | head -n 1)
[ -n "$f" ] && cmp -s <(awk 'f { print; next } $0 == "" { f = 1 }' "$MSG") <(sink_body "$f")
ok $? "its body is intact"
grep ": $QID: route=test " "$T_DIR/regigated.log" | grep -q "status=sent"
ok $? "regigated logged $QID as sent on the retry"
if [ "$T_FAILED" -gt 0 ]; then
    diag "$(echo "regigated.log:"; tail -n 15 "$T_DIR/regigated.log"; echo "maillog:"; grep -F "$QID" "$PF_LOG")"
fi
# the killed worker could not clean up after itself: whatever it spooled
# (the message is larger than spool_memory_limit, so it went to a file) must
# not outlive it. (regigated unlinks a spool file right after creating it;
# this keeps it that way.)
n=$(spool_left "$T_DIR/spool" | wc -l)
[ "$n" -eq 0 ]
ok $? "no files left in regigated's spool_dir (found $n)"

# ---- second case: killed while waiting for the key provider -----------------------
MARK2="killprov-$$-$RANDOM"
kill -STOP "$PROVIDER_PID"
printf 'From: <%s>\nTo: <%s>\nSubject: %s\n\nmarker %s\n' "$FROM" "$RCPT" "$MARK2" "$MARK2" > "$T_DIR/msg2.eml"
timeout 40 swaks --server "127.0.0.1:$(pf_public_port enc)" --helo client.rgtest.invalid \
    --from "$FROM" --to "$RCPT" --data "@$T_DIR/msg2.eml" --timeout 30 > "$T_DIR/swaks2.log" 2>&1
QID2=$(sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$T_DIR/swaks2.log" | tail -n 1)
[ -n "$QID2" ]; ok $? "route enc: public smtpd accepted a message (queue id ${QID2:-none}), provider stopped"
WORKER=
for ((i = 0; i < 150; i++)); do
    for p in $(sock_pids sport "$ENC_PORT"); do
        is_worker "$p" || continue
        sock_pids dport "$PPORT" | grep -qx "$p" && WORKER=$p && break
    done
    [ -n "$WORKER" ] && break
    sleep 0.1
done
[ -n "$WORKER" ]
ok $? "a worker (pid ${WORKER:-none}) holds the Postfix connection and waits for the provider"
[ -n "$WORKER" ] && kill -9 "$WORKER"
pf_log_wait "postfix/regigate-enc/smtp\[[0-9]+\]: $QID2: to=<$RCPT>.*status=deferred" 15
ok $? "worker killed: Postfix logs the delivery to the filter as deferred"
diag "$(grep -E "$QID2: to=<" "$PF_LOG" | tail -n 1)"
timeout 10 postqueue -c "$PF_CONF" -p > "$T_DIR/postqueue2.out" 2>&1
grep -q "^$QID2" "$T_DIR/postqueue2.out" && [ "$(sink_count "$SINK")" -eq 1 ]
ok $? "postqueue -p lists $QID2; nothing new at the sink"
mapfile -t pq < <(sed -n 2,3p "$T_DIR/postqueue2.out"); diag "${pq[@]}"
kill -0 "$REGIGATED_PID" 2>/dev/null
ok $? "the regigated master survived"
kill -CONT "$PROVIDER_PID"
pf_flush
pf_wait_empty 40
ok $? "provider resumed, flush: Postfix's queue drains"
for ((i = 0; i < 30; i++)); do [ "$(sink_count "$SINK")" -ge 2 ] && break; sleep 0.1; done
n=$(sink_files "$SINK" | xargs -r grep -l "^Subject: $MARK2" | xargs -r grep -l -i '^Content-Type: application/pkcs7-mime' | wc -l)
[ "$(sink_count "$SINK")" -eq 2 ] && [ "$n" -eq 1 ]
ok $? "the message arrived exactly once, encrypted (sink: $(sink_count "$SINK") messages)"
grep ": $QID2: route=enc " "$T_DIR/regigated.log" | grep -q "action=encrypt .*status=sent"
ok $? "regigated logged $QID2 as encrypted and sent on the retry"
[ "$T_FAILED" -gt 0 ] && diag "$(grep -F "$QID2" "$T_DIR/regigated.log" "$PF_LOG" | tail -n 8)"
t_done
