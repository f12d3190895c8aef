#!/bin/bash
# t/integration/postfix_chain.sh - regigated as a real Postfix after-queue
# content filter (FILTER_README "advanced" setup, as in contrib/postfix):
#
#   swaks -> public smtpd -> queue -> regigate-<route> (smtp or lmtp client)
#         -> regigated route -> reinjection smtpd -> queue -> smtp -> smtp-sink
#
# A private Postfix instance (postfix_lib.sh) with three route pairs: "test"
# (SMTP to the filter), "lmtptest" (LMTP to the filter) and "noxf" (SMTP
# without XFORWARD, so regigated must take the queue id from Postfix's
# Received header), served by one regigated with three routes. Checks: every message arrives exactly once and
# byte-identical in its body at the final sink, with its envelope; Postfix's
# queue drains; regigated logs one line per message carrying the queue id
# of the first Postfix stage (XFORWARD IDENT, or the Received header) and the
# reinjection's reply;
# the reinjection smtpd sees the original queue id (XFORWARD passed on).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
need swaks smtp-sink ss timeout
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"

plan 52

FROM=sender@origin.rgtest.invalid

# ---- ports, sink, daemon, Postfix ------------------------------------------
pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port LISTEN_PORT
pf_take_port LMTP_PORT
pf_take_port NOXF_PORT
REINJECT_PORT=$PF_REINJECT_PORT   # for write_conf
SINK=$T_DIR/sink

sink_start "$PF_SINK_PORT" "$SINK"
ok $? "smtp-sink listens on $PF_SINK_PORT"

CONF=$T_DIR/regigate.conf
write_conf "$CONF"
cat >> "$CONF" <<EOF

[route lmtptest]
listen = 127.0.0.1:$LMTP_PORT
protocol = lmtp
reinject = 127.0.0.1:$PF_REINJECT_PORT
process = message

[route noxf]
listen = 127.0.0.1:$NOXF_PORT
protocol = smtp
reinject = 127.0.0.1:$PF_REINJECT_PORT
process = message
EOF
start_regigated "$CONF" && wait_port "$LMTP_PORT" 5 && wait_port "$NOXF_PORT" 5
ok $? "regigated listens on $LISTEN_PORT (smtp), $LMTP_PORT (lmtp), $NOXF_PORT (smtp, no XFORWARD)"

pf_route test smtp "$LISTEN_PORT"
pf_route lmtptest lmtp "$LMTP_PORT"
pf_route noxf smtp "$NOXF_PORT" no
pf_configure && pf_start
ok $? "private Postfix instance started"
if [ "$T_FAILED" -gt 0 ]; then
    diag "$(tail -n 30 "$T_DIR/regigated.log" "$PF_LOG" "$T_DIR/postfix-ctl.log" 2>&1)"
    t_done
fi

# ---- helpers -----------------------------------------------------------------

# make_msg FILE MARKER: a message whose body has what a filter could
# easily damage: leading dots, "From " lines, trailing blanks, tabs, 8-bit
# text, long lines, empty lines, and ~200 KB of base64.
make_msg() {
    local f=$1 m=$2
    {
        printf 'From: Sender <%s>\n' "$FROM"
        printf 'To: undisclosed-recipients:;\n'
        printf 'Subject: chain test %s\n' "$m"
        printf 'Message-ID: <%s@origin.rgtest.invalid>\n' "$m"
        printf 'Date: %s\n' "$(LC_ALL=C date -R)"
        printf 'MIME-Version: 1.0\n'
        printf 'Content-Type: text/plain; charset=utf-8\n'
        printf 'Content-Transfer-Encoding: 8bit\n'
        printf '\n'
        printf 'marker %s\n' "$m"
        printf '.a line with a leading dot\n'
        printf '..two dots\n'
        printf '.\n'
        printf 'From the start of a line\n'
        printf 'trailing blanks   \n'
        printf '\ttab\tseparated\tfields\n'
        printf '\n\n'
        printf 'Grüße aus Köln – ÄÖÜ ß €\n'
        head -c 900 /dev/zero | tr '\0' 'x'; printf '\n'
        head -c 150000 /dev/urandom | base64 -w 76
        printf '\nend %s' "$m"   # no final newline: swaks adds the CRLF before "."
    } > "$f"
}

# body_of FILE: the body of a message file (after the first empty line)
body_of() { awk 'f { print; next } $0 == "" { f = 1 }' "$1"; }

# send PORT FILE RCPT...: submit FILE with swaks; prints the queue id that
# the public smtpd gave it ("250 2.0.0 Ok: queued as QUEUEID")
SENT=0
send() {
    local port=$1 file=$2 to; shift 2
    to=$(IFS=,; echo "$*")
    SENT=$((SENT + 1))
    timeout 40 swaks --server "127.0.0.1:$port" --helo client.rgtest.invalid \
        --from "$FROM" --to "$to" --data "@$file" --timeout 30 \
        > "$T_DIR/swaks.$SENT.log" 2>&1
    sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$T_DIR/swaks.$SENT.log" | tail -n 1
}

# sink_with MARKER: the sink files that contain MARKER
sink_with() { sink_files "$SINK" | xargs -r grep -l -F -- "marker $1"; }

# wait_sink MARKER N SECONDS: until N sink files contain MARKER
wait_sink() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(sink_with "$1" | wc -l)" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# check_chain ROUTE PROTO MARKER RCPT...: one message through the route,
# 8 assertions
check_chain() {
    local route=$1 proto=$2 m=$3; shift 3
    local msg=$T_DIR/$m.eml qid qid2 f n r
    make_msg "$msg" "$m"
    qid=$(send "$(pf_public_port "$route")" "$msg" "$@")
    [ -n "$qid" ]; ok $? "$route: public smtpd accepted the message (queue id ${qid:-none})"
    if [ -z "$qid" ]; then diag "$(cat "$T_DIR/swaks.$SENT.log")"; qid=NO-QUEUE-ID; fi

    pf_wait_empty 30
    ok $? "$route: Postfix queue drains"
    wait_sink "$m" 1 5
    n=$(sink_with "$m" | wc -l)
    [ "$n" -eq 1 ]; ok $? "$route: message arrives exactly once at the sink (got $n)"
    f=$(sink_with "$m" | head -n 1)

    if [ -n "$f" ] && cmp -s <(body_of "$msg") <(sink_body "$f"); then r=0; else r=1; fi
    ok $r "$route: body arrives intact"
    [ $r -ne 0 ] && [ -n "$f" ] && diag "$(diff <(body_of "$msg") <(sink_body "$f") | head -n 20)"

    if [ -n "$f" ] && [ "$(sink_sender "$f")" = "$FROM" ] &&
        [ "$(sink_rcpts "$f" | sort | paste -sd' ')" = "$(printf '%s\n' "$@" | sort | paste -sd' ')" ]; then
        r=0; else r=1; fi
    ok $r "$route: one transaction with the sender and all $# recipient(s)"
    [ $r -ne 0 ] && [ -n "$f" ] && diag "$(grep '^X-' "$f")"

    # first stage: the queue id came from the route's public smtpd ...
    grep -Eq "postfix/public-$route/smtpd\[[0-9]+\]: $qid: client=" "$PF_LOG"
    ok $? "$route: maillog shows $qid received by the public smtpd"
    # ... and Postfix delivered it to the filter, once per recipient
    n=$(grep -Ec "postfix/regigate-$route/$proto\[[0-9]+\]: $qid: to=<.*status=sent" "$PF_LOG")
    qid2=$(grep -E "postfix/regigate-$route/$proto\[[0-9]+\]: $qid: to=<.*status=sent" "$PF_LOG" |
        sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p' | sort -u)
    [ "$n" -eq $# ] && [ -n "$qid2" ] && [ "$(echo "$qid2" | wc -l)" -eq 1 ] &&
        grep -Eq "postfix/smtp\[[0-9]+\]: $qid2: to=<.*relay=127.0.0.1\[127.0.0.1\]:$PF_SINK_PORT,.*status=sent" "$PF_LOG"
    ok $? "$route: Postfix delivered $qid to regigated ($proto, $n/$# sent), reinjected as ${qid2:-?} and sent to the sink"

    # regigated: exactly one line for the message, with the first queue id,
    # the route, status=sent and the reinjection's queue id in its reply
    n=$(grep -c ": $qid: route=" "$T_DIR/regigated.log")
    grep ": $qid: route=$route " "$T_DIR/regigated.log" | grep "status=sent" | grep -q "queued as ${qid2:-?})"
    r=$?; [ "$n" -eq 1 ] || r=1
    ok $r "$route: regigated logged one line for $qid (route=$route status=sent, reinjected as ${qid2:-?})"
    [ $r -ne 0 ] && diag "$(grep -F -- "$qid" "$T_DIR/regigated.log" | head -n 5; tail -n 5 "$T_DIR/regigated.log")"

    if [ "$route" = noxf ]; then
        # no XFORWARD from Postfix, so no orig_queue_id downstream: regigated
        # found the id in the Received header that the public smtpd added
        ! grep -Eq "postfix/reinject/smtpd\[[0-9]+\]: ${qid2:-?}: .*orig_queue_id=" "$PF_LOG" &&
            sink_headers "$f" | grep -Eq "^Received: .*\(Postfix\) with E?SMTP id ${qid}[; ]"
        ok $? "$route: no XFORWARD downstream; $qid is only in the Received header"
    else
        # the reinjection smtpd got the original queue id via XFORWARD IDENT
        grep -Eq "postfix/reinject/smtpd\[[0-9]+\]: ${qid2:-?}: client=.*orig_queue_id=$qid" "$PF_LOG"
        ok $? "$route: reinjection smtpd saw orig_queue_id=$qid (XFORWARD passed on)"
    fi
}

# sink_headers FILE: the header of the message in a sink file (including
# smtp-sink's own lines), folded lines joined into one
sink_headers() {
    [ -n "$1" ] || return 1
    awk '$0 == "" { exit } /^[ \t]/ { h = h " " $0; next }
         { if (h != "") print h; h = $0 } END { if (h != "") print h }' "$1"
}

# ---- the tests -------------------------------------------------------------
check_chain test smtp "smtp1-$$-$RANDOM" rcpt1@dest.rgtest.invalid
check_chain test smtp "smtp3-$$-$RANDOM" a@dest.rgtest.invalid b@dest.rgtest.invalid c@other.rgtest.invalid
check_chain lmtptest lmtp "lmtp1-$$-$RANDOM" rcpt1@dest.rgtest.invalid
check_chain lmtptest lmtp "lmtp3-$$-$RANDOM" a@dest.rgtest.invalid b@dest.rgtest.invalid c@other.rgtest.invalid
check_chain noxf smtp "noxf1-$$-$RANDOM" rcpt1@dest.rgtest.invalid

# ---- the whole run ----------------------------------------------------------
n=$(sink_count "$SINK")
[ "$n" -eq 5 ]; ok $? "the sink holds exactly the 5 messages sent (got $n)"
[ "$(pf_queue_count)" -eq 0 ]; ok $? "nothing left in Postfix's queue"
! grep -Eq 'postfix/[^ ]+\[[0-9]+\]: (fatal|panic|error):' "$PF_LOG"
ok $? "no fatal/panic/error lines in the Postfix log"
w=$(grep -E ': (fatal|panic|error|warning):' "$PF_LOG" | head -n 10)
[ -n "$w" ] && diag "$w"
kill -0 "$REGIGATED_PID" 2>/dev/null
ok $? "regigated is still running"
t_done
