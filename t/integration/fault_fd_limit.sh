#!/bin/bash
# t/integration/fault_fd_limit.sh - file descriptor limits hit.
#
# 1. accept() fails with EMFILE. `ulimit -n` for the whole daemon cannot
#    make that happen: the master holds four more descriptors than a worker
#    (its ends of the status and signal pipes), so any limit the master
#    starts under leaves a worker room for the connection, the reinjection
#    and a spool file. So the test lowers the running workers' own limit
#    (prlimit --nofile) to the number of the lowest free descriptor, as a
#    descriptor leak in a worker would. Then a message comes from Postfix:
#    each worker that tries to accept logs the error and exits, the master
#    forks fresh workers (with its own, normal limit), and the message is
#    delivered exactly once without anyone stepping in. (Before: the
#    worker logged a warning every 100 ms and kept its place in the pool;
#    with every worker so limited the mail waited until Postfix's
#    smtp_helo_timeout, 300 s, and was deferred, again and again.)
# 2. regigated started with a small `ulimit -n`: the largest limit under
#    which it cannot work (it says why and exits: nothing is accepted, so
#    nothing can be lost; Postfix keeps the mail), and the smallest one
#    under which it serves a message that is spooled to a file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
need swaks smtp-sink ss timeout prlimit
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"

plan 10

FROM=sender@origin.rgtest.invalid
RCPT=rcpt@dest.rgtest.invalid
MARK="fd-$$-$RANDOM"

pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port LISTEN_PORT
REINJECT_PORT=$PF_REINJECT_PORT
SINK=$T_DIR/sink
sink_start "$PF_SINK_PORT" "$SINK"
MAX_SERVERS=3 MAX_SPARE=3 EXTRA_GLOBAL="min_spare_servers = 3" write_conf "$T_DIR/regigate.conf"
# no user = nobody: prlimit(1) may change another process's limits only
# when it runs as the same user (or with CAP_SYS_RESOURCE, which a
# container may not grant even to root)
sed -i '/^min_spare_servers = 1$/d; /^user = /d' "$T_DIR/regigate.conf"
start_regigated "$T_DIR/regigate.conf"
ok $? "regigated listens on $LISTEN_PORT (3 workers)"
pf_route test smtp "$LISTEN_PORT"
pf_configure && pf_start
ok $? "private Postfix instance started"
[ "$T_FAILED" -gt 0 ] && { diag "$(tail -n 20 "$PF_LOG" "$T_DIR/postfix-ctl.log")"; t_done; }

# ---- 1. a worker's descriptor table is full ------------------------------------------
for ((i = 0; i < 50; i++)); do [ "$(pgrep -P "$REGIGATED_PID" | wc -l)" -ge 3 ] && break; sleep 0.1; done
mapfile -t OLD < <(pgrep -P "$REGIGATED_PID")
lowest_free() {   # the lowest descriptor number not open in process $1
    local n=0
    while [ -e "/proc/$1/fd/$n" ]; do n=$((n + 1)); done
    echo "$n"
}
r=0
for w in "${OLD[@]}"; do
    n=$(lowest_free "$w")
    prlimit --pid "$w" --nofile="$n:$n" || r=1
done
[ "${#OLD[@]}" -ge 3 ] && [ "$r" -eq 0 ]
ok $? "the limit of every worker (${OLD[*]}) lowered to its lowest free descriptor"

printf 'From: <%s>\nTo: <%s>\nSubject: %s\n\nmarker %s\n' "$FROM" "$RCPT" "$MARK" "$MARK" > "$T_DIR/m.eml"
timeout 40 swaks --server "127.0.0.1:$(pf_public_port test)" --helo client.rgtest.invalid \
    --from "$FROM" --to "$RCPT" --data "@$T_DIR/m.eml" --timeout 30 > "$T_DIR/swaks.log" 2>&1
QID=$(sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$T_DIR/swaks.log" | tail -n 1)
[ -n "$QID" ]; ok $? "Postfix accepted a message (queue id ${QID:-none})"
pf_log_wait "postfix/regigate-test/smtp\[[0-9]+\]: $QID: to=<$RCPT>.*status=sent" 20
ok $? "it is delivered through regigated without anyone stepping in"
diag "$(grep -E "$QID: to=<" "$PF_LOG" | tail -n 1 | sed 's/.*delay=/delay=/')"
for ((i = 0; i < 30; i++)); do [ "$(sink_count "$SINK")" -ge 1 ] && break; sleep 0.1; done
[ "$(sink_count "$SINK")" -eq 1 ] && ! grep -q "$QID: to=<.*status=deferred" "$PF_LOG"
ok $? "exactly once at the sink, never deferred"
grep -q 'accept on route test: Too many open files; worker exits' "$T_DIR/regigated.log" &&
    [ "$(grep -c 'accept on route test' "$T_DIR/regigated.log")" -le 3 ]
ok $? "the accept error is logged once per worker ($(grep -c 'accept on route test' "$T_DIR/regigated.log") lines)"
diag "$(grep 'accept on route' "$T_DIR/regigated.log" | head -n 1)"
alive=0
for w in "${OLD[@]}"; do kill -0 "$w" 2>/dev/null && alive=$((alive + 1)); done
kill -0 "$REGIGATED_PID" 2>/dev/null && [ "$(pgrep -P "$REGIGATED_PID" | wc -l)" -ge 1 ]
ok $? "the master runs and has fresh workers ($alive of the limited ones still waiting)"

# ---- 2. the whole daemon under a small ulimit -n -------------------------------------------
t_stop_pid "$REGIGATED_PID"
BIG=$T_DIR/big.eml
{ printf 'Subject: big\r\n\r\n'; head -c 400000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'; } > "$BIG"
# the descriptors this shell passes on count too: start from a clean table
run_limited() {   # run_limited N: regigated -f under ulimit -n N, in the background
    (ulimit -n "$1"; exec "$REGIGATED" -f -c "$T_DIR/regigate.conf" >> "$T_DIR/regigated.$1.log" 2>&1 \
        0</dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-) &
    LIMITED=$!
    track "$LIMITED"
}
works=
# under valgrind (make check-valgrind) the tool itself needs descriptors
# and keeps some at the top of the table for its own use: larger limits too
for n in 6 7 8 9 10 11 12 16 ${RG_VALGRIND:+24 32 48 64}; do
    run_limited "$n"
    if wait_port "$LISTEN_PORT" 2 && kill -0 "$LIMITED" 2>/dev/null; then
        swaks_to "$LISTEN_PORT" --from "$FROM" --to "$RCPT" --data "@$BIG" > "$T_DIR/swaks.$n" 2>&1
        if grep -q '^<-  250 ' "$T_DIR/swaks.$n"; then works=$n; t_stop_pid "$LIMITED"; break; fi
        diag "ulimit -n $n: $(grep '^<\*\*' "$T_DIR/swaks.$n" | tail -n 1)"
    else
        diag "ulimit -n $n: $(tail -n 1 "$T_DIR/regigated.$n.log")"
    fi
    t_stop_pid "$LIMITED"
    for ((i = 0; i < 40; i++)); do ss -Hltn "sport = :$LISTEN_PORT" | grep -q . || break; sleep 0.05; done
done
[ -n "$works" ]
ok $? "under ulimit -n ${works:-?} regigated serves a message spooled to a file"
below=$((works - 1))
! grep -qi 'panic\|assert' "$T_DIR"/regigated.*.log 2>/dev/null &&
    { [ ! -f "$T_DIR/regigated.$below.log" ] || grep -Eq 'fatal|error|451|cannot' "$T_DIR/regigated.$below.log" "$T_DIR/swaks.$below" 2>/dev/null; }
ok $? "below that (ulimit -n $below) it refuses with a reason, never a crash"
t_done
