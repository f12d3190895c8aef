#!/bin/bash
# t/integration/fault_spool_full.sh - regigated's spool_dir on a full file
# system: a 1 MiB tmpfs mounted for the test (needs root and mount(8);
# skipped with the reason otherwise). A message larger than
# spool_memory_limit must be spooled to a file, which fails with ENOSPC:
# regigated answers 451 4.3.0 after the data, Postfix keeps the message
# queued (postqueue -p shows regigated's reason), a small message (kept in
# memory) still passes meanwhile; once the file system has room again
# (remounted larger) the retry delivers the big message exactly once and
# intact, without restarting anything.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
need swaks smtp-sink ss timeout mount umount
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"

SPOOL=$T_DIR/spool
mkdir -p "$SPOOL"
mount -t tmpfs -o size=1m,mode=0700 rgtest-spool "$SPOOL" 2>/dev/null ||
    skip_all "cannot mount a tmpfs (mount -t tmpfs not permitted here)"
MOUNTED=1
# unmount after every process is gone, before the scratch dir is removed
eval "t_cleanup_pflib() $(declare -f t_cleanup | tail -n +2)"
t_cleanup() {
    pf_cleanup
    t_stop_pid "${REGIGATED_PID:-0}"
    [ "${MOUNTED:-0}" = 1 ] && umount "$SPOOL" 2>/dev/null
    t_cleanup_pflib
}

plan 12

FROM=sender@origin.rgtest.invalid
RCPT=rcpt@dest.rgtest.invalid
MARK="full-$$-$RANDOM"

pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port LISTEN_PORT
REINJECT_PORT=$PF_REINJECT_PORT
SINK=$T_DIR/sink
sink_start "$PF_SINK_PORT" "$SINK"
write_conf "$T_DIR/regigate.conf"    # spool_dir = $T_DIR/spool, owned by the daemon's user
start_regigated "$T_DIR/regigate.conf"
df -h "$SPOOL" | tail -n 1 | awk '{print $2, $5}' | grep -q '^1.0M' && kill -0 "$REGIGATED_PID" 2>/dev/null
ok $? "regigated runs with spool_dir on a 1 MiB tmpfs"
pf_route test smtp "$LISTEN_PORT"
pf_configure && pf_start
ok $? "private Postfix instance started"
[ "$T_FAILED" -gt 0 ] && { diag "$(tail -n 20 "$PF_LOG" "$T_DIR/postfix-ctl.log")"; t_done; }

send() {   # send FILE: prints the queue id
    timeout 40 swaks --server "127.0.0.1:$(pf_public_port test)" --helo client.rgtest.invalid \
        --from "$FROM" --to "$RCPT" --data "@$1" --timeout 30 > "$1.swaks" 2>&1
    sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$1.swaks" | tail -n 1
}
BIG=$T_DIR/big.eml
{ printf 'From: <%s>\nTo: <%s>\nSubject: %s big\n\nmarker %s-big\n' "$FROM" "$RCPT" "$MARK" "$MARK"
  head -c 2000000 /dev/urandom | base64 -w 76; printf 'end'; } > "$BIG"
SMALL=$T_DIR/small.eml
printf 'From: <%s>\nTo: <%s>\nSubject: %s small\n\nmarker %s-small\n' "$FROM" "$RCPT" "$MARK" "$MARK" > "$SMALL"

QB=$(send "$BIG")
[ -n "$QB" ]; ok $? "a 2.7 MB message accepted by Postfix (queue id ${QB:-none})"
pf_log_wait "postfix/regigate-test/smtp\[[0-9]+\]: $QB: to=<$RCPT>.*status=deferred \(host .* said: 451 4\.3\.0 " 20
ok $? "regigated cannot spool it: 451 4.3.0, Postfix defers"
diag "$(grep -E "$QB: to=<" "$PF_LOG" | tail -n 1 | sed 's/.*status=/status=/')"
grep -q "cannot spool message in $SPOOL: No space left on device" "$T_DIR/regigated.log"
ok $? "regigated logs: cannot spool message ...: No space left on device"
timeout 10 postqueue -c "$PF_CONF" -p > "$T_DIR/pq.out" 2>&1
grep -q "^$QB[*!]\? " "$T_DIR/pq.out" && grep -q '451 4.3.0 Error: local error spooling the message' "$T_DIR/pq.out"
ok $? "postqueue -p: $QB stays queued with regigated's reason"
mapfile -t pq < <(sed -n 2,3p "$T_DIR/pq.out"); diag "${pq[@]}"

QS=$(send "$SMALL")
pf_log_wait "postfix/regigate-test/smtp\[[0-9]+\]: $QS: to=<$RCPT>.*status=sent" 15
ok $? "meanwhile a small message (spooled in memory) passes (queue id ${QS:-none})"
[ "$(spool_left "$SPOOL" | wc -l)" -eq 0 ] && [ "$(df --output=used -k "$SPOOL" | tail -n 1 | tr -d ' ')" -lt 64 ]
ok $? "nothing left behind in the spool file system ($(df --output=used -k "$SPOOL" | tail -n 1 | tr -d ' ') KiB used)"

mount -o remount,size=64m "$SPOOL"
ok $? "the spool file system grown to 64 MiB (no restart of anything)"
pf_flush
pf_wait_empty 40
ok $? "after a flush Postfix's queue drains"
for ((i = 0; i < 30; i++)); do [ "$(sink_count "$SINK")" -ge 2 ] && break; sleep 0.1; done
nb=$(sink_files "$SINK" | xargs -r grep -l -F -- "marker $MARK-big" | wc -l)
ns=$(sink_files "$SINK" | xargs -r grep -l -F -- "marker $MARK-small" | wc -l)
[ "$nb" -eq 1 ] && [ "$ns" -eq 1 ] && [ "$(sink_count "$SINK")" -eq 2 ]
ok $? "the big and the small message each arrived exactly once (big $nb, small $ns)"
f=$(sink_files "$SINK" | xargs -r grep -l -F -- "marker $MARK-big" | head -n 1)
[ -n "$f" ] && cmp -s <(awk 'f { print; next } $0 == "" { f = 1 }' "$BIG") <(sink_body "$f")
ok $? "the big message's body is intact"
t_done
