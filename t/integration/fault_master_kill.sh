#!/bin/bash
# t/integration/fault_master_kill.sh - the regigated master killed with
# SIGKILL while a worker is in the middle of a transaction, and a new
# regigated started at once (what a service manager does):
#   - the workers notice (PR_SET_PDEATHSIG gives them SIGTERM): idle ones
#     exit, the busy one finishes its transaction and then exits;
#   - the new master can bind the route's port at once, although the old
#     busy worker is still running (it closes its copy of the listening
#     socket when told to stop; before that fix the new master failed with
#     "Address already in use" until the old transaction ended);
#   - the message in flight is delivered exactly once, a message sent after
#     the restart is delivered by the new pool, Postfix's queue drains.
#
# Chain: swaks -> public smtpd -> queue -> regigate-test -> regigated
#        -> reinjection smtpd (stalls STALL s at DATA) -> queue -> smtp-sink
# The stall keeps the worker inside the transaction while the master dies
# (see fault_kill_worker.sh for how it works).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
need swaks smtp-sink ss timeout
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"

plan 14

FROM=sender@origin.rgtest.invalid
RCPT=rcpt@dest.rgtest.invalid
STALL=6
MARK="mkill-$$-$RANDOM"

pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port LISTEN_PORT
REINJECT_PORT=$PF_REINJECT_PORT
SINK=$T_DIR/sink
sink_start "$PF_SINK_PORT" "$SINK"

MAX_SPARE=3 REINJECT_TIMEOUT=60 SMTP_TIMEOUT=60 write_conf "$T_DIR/regigate.conf"
start_regigated "$T_DIR/regigate.conf"
ok $? "regigated listens on $LISTEN_PORT"
OLD_MASTER=$REGIGATED_PID

pf_route test smtp "$LISTEN_PORT"
# shellcheck disable=SC2034 # read by pf_configure
PF_REINJECT_OPTS="-o smtpd_data_restrictions=sleep,$STALL"
pf_configure && pf_start
ok $? "private Postfix instance, reinjection stalls ${STALL}s at DATA"
[ "$T_FAILED" -gt 0 ] && { diag "$(tail -n 20 "$PF_LOG" "$T_DIR/postfix-ctl.log")"; t_done; }

# send MARKER: one message through the public smtpd; prints its queue id
send() {
    printf 'From: <%s>\nTo: <%s>\nSubject: %s\n\nmarker %s\n' "$FROM" "$RCPT" "$1" "$1" > "$T_DIR/$1.eml"
    timeout 40 swaks --server "127.0.0.1:$(pf_public_port test)" --helo client.rgtest.invalid \
        --from "$FROM" --to "$RCPT" --data "@$T_DIR/$1.eml" --timeout 30 > "$T_DIR/$1.swaks" 2>&1
    sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$T_DIR/$1.swaks" | tail -n 1
}
sink_with() { sink_files "$SINK" | xargs -r grep -l -F -- "marker $1" | wc -l; }

QID=$(send "$MARK-a")
[ -n "$QID" ]; ok $? "public smtpd accepted message A (queue id ${QID:-none})"

BUSY=
for ((i = 0; i < 100; i++)); do
    for p in $(sock_pids sport "$LISTEN_PORT"); do
        [ "$(ps -o ppid= -p "$p" | tr -d ' ')" = "$OLD_MASTER" ] || continue
        sock_pids dport "$PF_REINJECT_PORT" | grep -qx "$p" && BUSY=$p && break
    done
    [ -n "$BUSY" ] && break
    sleep 0.1
done
mapfile -t WORKERS < <(pgrep -P "$OLD_MASTER")
[ -n "$BUSY" ]; ok $? "worker $BUSY is inside the reinjection of A (pool: ${WORKERS[*]})"

# ---- kill the master, start a new one at once ---------------------------------
kill -9 "$OLD_MASTER"
wait "$OLD_MASTER" 2>/dev/null
n0=$(grep -c ' started: ' "$T_DIR/regigated.log")
"$REGIGATED" -f -c "$T_DIR/regigate.conf" >> "$T_DIR/regigated.log" 2>&1 &
REGIGATED_PID=$!
track "$REGIGATED_PID"
for ((i = 0; i < 40; i++)); do
    kill -0 "$REGIGATED_PID" 2>/dev/null || break
    [ "$(grep -c ' started: ' "$T_DIR/regigated.log")" -gt "$n0" ] && break
    sleep 0.05
done
sleep 0.3
kill -0 "$REGIGATED_PID" 2>/dev/null &&
    ss -Hltnp "sport = :$LISTEN_PORT" | grep -q "pid=$REGIGATED_PID,"
ok $? "a new master started at once binds port $LISTEN_PORT while the old worker is busy"
[ "$T_FAILED" -gt 0 ] && diag "$(tail -n 5 "$T_DIR/regigated.log")" "$(ss -Hltnp "sport = :$LISTEN_PORT")"

idle_left() {
    local w n=0
    for w in "${WORKERS[@]}"; do [ "$w" != "$BUSY" ] && kill -0 "$w" 2>/dev/null && n=$((n + 1)); done
    echo "$n"
}
for ((i = 0; i < 30; i++)); do [ "$(idle_left)" -eq 0 ] && break; sleep 0.1; done
[ "$(idle_left)" -eq 0 ] && kill -0 "$BUSY" 2>/dev/null
ok $? "the old idle workers exited (PR_SET_PDEATHSIG), the busy one is still serving"

pf_log_wait "postfix/regigate-test/smtp\[[0-9]+\]: $QID: to=<$RCPT>.*status=sent" $((STALL + 15))
ok $? "the old worker finished the transaction: Postfix logs A ($QID) as sent"
for ((i = 0; i < 50; i++)); do kill -0 "$BUSY" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$BUSY" 2>/dev/null
ok $? "... and then it exited"

# ---- the new pool serves; nothing lost, nothing twice ------------------------
pf_set_reinject_opts && pf_reload
QID2=$(send "$MARK-b")
[ -n "$QID2" ]; ok $? "message B accepted after the restart (queue id ${QID2:-none})"
pf_wait_empty 40
ok $? "Postfix's queue drains"
[ "$T_FAILED" -gt 0 ] && diag "$(timeout 10 postqueue -c "$PF_CONF" -p)"
for ((i = 0; i < 50; i++)); do [ "$(sink_count "$SINK")" -ge 2 ] && break; sleep 0.1; done
[ "$(sink_with "$MARK-a")" -eq 1 ] && [ "$(sink_with "$MARK-b")" -eq 1 ] && [ "$(sink_count "$SINK")" -eq 2 ]
ok $? "A and B each arrived exactly once (sink: $(sink_count "$SINK") messages)"
grep ": $QID2: route=test " "$T_DIR/regigated.log" | grep -q "status=sent" &&
    [ "$(ps -o ppid= -p "$(pgrep -P "$REGIGATED_PID" | head -n 1)" | tr -d ' ')" = "$REGIGATED_PID" ]
ok $? "B went through the new master's pool"
! grep -q 'cannot listen' "$T_DIR/regigated.log"
ok $? "no 'cannot listen' in regigated's log"
kill -0 "$REGIGATED_PID" 2>/dev/null && wait_port "$LISTEN_PORT" 2
ok $? "the new regigated runs and listens"
t_done
