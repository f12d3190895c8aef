#!/bin/bash
# t/soak/soak.sh - SOAK_N messages (default 20,000) through the full Postfix
# chain with an encrypting and a decrypting route, while regigated and the
# key provider are restarted (and killed) at random moments; at the end a
# count at the sink proves that nothing was lost and reports duplicates.
#
#   swaks-like client (bash, SMTP) -> public smtpd "out" -> queue
#     -> regigate-out -> regigated route out (encrypt: Subject [secure])
#     -> public smtpd "in" -> queue -> regigate-in
#     -> regigated route in (decrypt) -> reinjection smtpd -> queue
#     -> smtp -> smtp-sink (one file per message)
#
# One private Postfix instance (t/integration/postfix_lib.sh), one regigated
# with both routes, one regigate-provider (t/integration/provider_lib.sh).
#
# Environment:
#   SOAK_N        messages (default 20000)
#   SOAK_SEED     seed of the fault schedule (default: random; printed)
#   SOAK_CLIENTS  parallel submitting SMTP sessions (default 4)
#   SOAK_PAUSE    "MIN MAX": seconds between two faults (default "2 10")
#   SOAK_REPORT   also write the report to this file
#   SOAK_DRAIN    seconds allowed for the queue to drain after the last
#                 fault (default 600 + SOAK_N / 10)
#
# The fault schedule is reproducible: with the same SOAK_SEED the same
# faults come in the same order with the same pauses (which messages they
# hit depends on timing and cannot be). Faults, drawn with RANDOM seeded by
# SOAK_SEED:
#   rg-term     regigated SIGTERM (graceful: transactions finish), restart
#   rg-kill     regigated master SIGKILL, restart at once (the workers get
#               SIGTERM from the kernel, PR_SET_PDEATHSIG, and finish)
#   rg-hup      regigated SIGHUP (reload: a new generation of workers)
#   worker-kill one regigated worker SIGKILL (busy or not)
#   prov-term   provider SIGTERM, restart after 0-3 s
#   prov-kill   provider SIGKILL, restart after 0-3 s
#
# Every message carries a unique id (X-Soak-Id, and the same id in its
# Message-ID, which the encrypted form keeps). Zero loss: every id that the
# first smtpd accepted is at the sink. Duplicates (the same id more than
# once) are counted and reported, not failed: a worker killed after the
# next hop accepted a message but before it answered Postfix is the classic
# SMTP duplicate window. Every message must arrive decrypted, with its body
# intact. Prints TAP.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/t/integration/lib.sh"
. "$top_srcdir/t/integration/postfix_lib.sh"
. "$top_srcdir/t/integration/provider_lib.sh"

pf_require
need smtp-sink ss timeout openssl
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"
[ -x "$PROVIDER" ] || skip_all "regigate-provider not built ($PROVIDER)"

plan 13

N=${SOAK_N:-20000}
SEED=${SOAK_SEED:-$(( (RANDOM << 15 | RANDOM) % 1000000 ))}
CLIENTS=${SOAK_CLIENTS:-4}
read -r PAUSE_MIN PAUSE_MAX <<< "${SOAK_PAUSE:-2 10}"
DRAIN=${SOAK_DRAIN:-$((600 + N / 10))}
FROM=alice@example.com
RCPT=bob@example.org
diag "soak: N=$N seed=$SEED clients=$CLIENTS pause=${PAUSE_MIN}-${PAUSE_MAX}s"
T0=$(date +%s)

cd "$T_DIR" || exit 1
# ---- provider, Postfix, regigated ---------------------------------------------
prov_init "$FROM" "$RCPT"
ok $? "provider: init, serve, gateway, accounts" || { diag "$(cat "$PROV_DIR"/*.out "$PROV_DIR/provider.log")"; t_done; }

pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port OUT_PORT
pf_take_port IN_PORT
LISTEN_PORT=$OUT_PORT
SINK=$T_DIR/sink
sink_start "$PF_SINK_PORT" "$SINK"
pf_route out smtp "$OUT_PORT"
pf_route in smtp "$IN_PORT"

mkdir -p spool && chown nobody spool && chmod 700 spool
cat > rg.conf <<EOF
[global]
user = nobody
spool_dir = $T_DIR/spool
pid_file = $T_DIR/regigated.pid
max_servers = 12
min_spare_servers = 2
max_spare_servers = 4
reinject_timeout = 60
smtp_timeout = 60
shutdown_timeout = 30

[route out]
listen = 127.0.0.1:$OUT_PORT
reinject = 127.0.0.1:$(pf_public_port in)
rules = $T_DIR/out.json
$(prov_route_lines)

[route in]
listen = 127.0.0.1:$IN_PORT
reinject = 127.0.0.1:$PF_REINJECT_PORT
rules = $T_DIR/in.json
$(prov_route_lines)
EOF
cat > out.json <<'EOR'
{ "rules": [ { "name": "secure", "action": "encrypt",
               "conditions": [ { "field": "header:Subject", "op": "contains", "value": "[secure]" } ] } ],
  "default": { "action": "forward" } }
EOR
echo '{ "rules": [], "default": { "action": "decrypt" } }' > in.json
prov_certs rg.conf out
ok $? "the gateway's certificate: request, sign, import" || diag "$(cat "$PROV_DIR/ctl.err")"

RG_STARTS=0
RG_BIND_RETRIES=0
: >> regigated.log
# rg_start: a new regigated; waits until it logged its start. A start that
# fails (e.g. the port still held) is retried every 0.5 s for 30 s and
# counted in RG_BIND_RETRIES.
rg_start() {
    local i n0 pid
    for ((i = 0; i < 60; i++)); do
        n0=$(grep -c ' started: ' regigated.log 2>/dev/null)
        "$REGIGATED" -f -c rg.conf >> regigated.log 2>&1 &
        pid=$!
        while kill -0 "$pid" 2>/dev/null && [ "$(grep -c ' started: ' regigated.log)" -le "$n0" ]; do
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            REGIGATED_PID=$pid; track "$pid"; RG_STARTS=$((RG_STARTS + 1))
            return 0
        fi
        wait "$pid" 2>/dev/null
        RG_BIND_RETRIES=$((RG_BIND_RETRIES + 1))
        sleep 0.5
    done
    return 1
}
# untrack PID: forget a pid that has exited (its number may be reused)
untrack() {
    local i
    for i in "${!T_PIDS[@]}"; do [ "${T_PIDS[$i]}" = "$1" ] && unset 'T_PIDS[i]'; done
    T_PIDS=("${T_PIDS[@]}")
}
rg_start && wait_port "$IN_PORT" 5
ok $? "regigated with an encrypting and a decrypting route" || diag "$(cat regigated.log)"

PF_FILTER_CONCURRENCY=4
pf_configure && pf_start
ok $? "private Postfix instance (out -> regigated -> in -> regigated -> sink)" ||
    { diag "$(tail -n 20 "$PF_LOG" postfix-ctl.log 2>&1)"; t_done; }

# ---- the messages ----------------------------------------------------------------
# 16 bodies of 1 to 16 KB of base64 (no line starts with a dot); message i
# uses body i % 16 between two marker lines that carry its id
mkdir -p pool
for ((k = 0; k < 16; k++)); do
    head -c $((768 * (k + 1))) /dev/urandom | base64 -w 76 > "pool/$k"
    POOL[k]=$(sed 's/$/\r/' "pool/$k")
done

# submit CLIENT FIRST LAST: one SMTP session per 100 messages; the ids that
# got 250 go to acc.CLIENT, the others to rej.CLIENT
submit() {
    local c=$1 first=$2 last=$3 i fd code line subj k id
    reply() {   # the code of the next (multi-line) reply in $code
        code=
        while IFS= read -r -t 120 line <&"$fd"; do
            [ "${line:3:1}" = - ] && continue
            code=${line:0:3}; return 0
        done
        return 1
    }
    cmd() { printf '%s\r\n' "$1" >&"$fd" && reply; }
    i=$first
    while [ "$i" -le "$last" ]; do
        exec {fd}<>"/dev/tcp/127.0.0.1/$(pf_public_port out)" || { sleep 1; continue; }
        reply && cmd "EHLO client$c.soak.invalid" || { exec {fd}>&-; sleep 1; continue; }
        for ((n = 0; n < 100 && i <= last; n++, i++)); do
            id=$SEED-$i
            k=$((i % 16))
            if ((i % 10 == 3)); then subj="soak $i plain"; else subj="[secure] soak $i"; fi
            cmd "MAIL FROM:<$FROM>" && [ "$code" = 250 ] && cmd "RCPT TO:<$RCPT>" && [ "$code" = 250 ] &&
                cmd "DATA" && [ "$code" = 354 ] || { echo "$id ${code:-none}" >> "rej.$c"; break; }
            printf 'From: Alice <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <soak.%s@example.com>\r\nX-Soak-Id: %s\r\nX-Soak-Body: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nsoak-begin %s\r\n%s\r\nsoak-end %s\r\n.\r\n' \
                "$FROM" "$RCPT" "$subj" "$id" "$id" "$k" "$id" "${POOL[k]}" "$id" >&"$fd"
            if reply && [ "$code" = 250 ]; then echo "$id" >> "acc.$c"; else echo "$id ${code:-none}" >> "rej.$c"; break; fi
        done
        printf 'QUIT\r\n' >&"$fd" 2>/dev/null
        exec {fd}>&-
    done
}
per=$(( (N + CLIENTS - 1) / CLIENTS ))
SUBMITTERS=()
for ((c = 0; c < CLIENTS; c++)); do
    first=$((c * per + 1)); last=$(((c + 1) * per)); [ "$last" -gt "$N" ] && last=$N
    [ "$first" -le "$last" ] || continue
    submit "$c" "$first" "$last" &
    SUBMITTERS+=($!); track $!
done

# ---- faults at random moments ---------------------------------------------------------
RANDOM=$SEED
FAULTS=()
declare -A NFAULT=()
submitting() { local p; for p in "${SUBMITTERS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
rg_stop_wait() {   # wait for the old master to go (graceful stop)
    local i
    for ((i = 0; i < 700; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    wait "$1" 2>/dev/null
    untrack "$1"
}
fault() {
    local what=$1 old w
    case $what in
    rg-term)
        old=$REGIGATED_PID; kill -TERM "$old"; rg_stop_wait "$old"; rg_start ;;
    rg-kill)
        old=$REGIGATED_PID; kill -9 "$old"; wait "$old" 2>/dev/null; untrack "$old"; rg_start ;;
    rg-hup)
        kill -HUP "$REGIGATED_PID" ;;
    worker-kill)
        mapfile -t w < <(pgrep -P "$REGIGATED_PID")
        [ "${#w[@]}" -gt 0 ] && kill -9 "${w[RANDOM % ${#w[@]}]}" ;;
    prov-term | prov-kill)
        old=$PROVIDER_PID
        if [ "$what" = prov-term ]; then prov_stop; else prov_kill; fi
        wait "$old" 2>/dev/null; untrack "$old"
        sleep "$((RANDOM % 4))"
        prov_start ;;
    esac
}
KINDS=(rg-term rg-kill rg-hup worker-kill prov-term prov-kill)
while submitting || [ "$(pf_queue_count)" -gt 50 ]; do
    p=$((PAUSE_MIN + RANDOM % (PAUSE_MAX - PAUSE_MIN + 1)))
    what=${KINDS[RANDOM % ${#KINDS[@]}]}
    sleep "$p"
    [ $(( $(date +%s) - T0 )) -gt $((DRAIN * 3)) ] && break    # never run away
    fault "$what"
    FAULTS+=("+$(( $(date +%s) - T0 ))s:$what")
    NFAULT[$what]=$(( ${NFAULT[$what]:-0} + 1 ))
done
T_SUBMIT_END=$(date +%s)
for p in "${SUBMITTERS[@]}"; do wait "$p"; untrack "$p"; done

# ---- drain -----------------------------------------------------------------------------
kill -0 "$REGIGATED_PID" 2>/dev/null || rg_start
kill -0 "$PROVIDER_PID" 2>/dev/null || prov_start
ACC=$(cat acc.* 2>/dev/null | wc -l)
REJ=$(cat rej.* 2>/dev/null | wc -l)
[ "$ACC" -eq "$N" ]
ok $? "the first smtpd accepted all $N messages (accepted $ACC, refused $REJ)"
drained=1
for ((s = 0; s < DRAIN; s += 5)); do
    [ "$(pf_queue_count)" -eq 0 ] && { drained=0; break; }
    ((s % 30 == 25)) && pf_flush >/dev/null 2>&1
    sleep 5
done
T_END=$(date +%s)
ok "$drained" "Postfix's queue drains (left: $(pf_queue_count))"
[ "$drained" -ne 0 ] && diag "$(timeout 20 postqueue -c "$PF_CONF" -p | tail -n 15)"
kill -0 "$REGIGATED_PID" 2>/dev/null && kill -0 "$PROVIDER_PID" 2>/dev/null
ok $? "regigated and the provider are up at the end"
sleep 1

# ---- the count --------------------------------------------------------------------------
# one awk pass over all sink files: the id (X-Soak-Id, or the Message-ID of
# a message that arrived still encrypted), the body checked line by line
# against its pool body
sink_files "$SINK" > files.lst
xargs -r -a files.lst awk -v pooldir=pool '
    BEGIN { for (k = 0; k < 16; k++) { n = 0
              while ((getline l < (pooldir "/" k)) > 0) pool[k, ++n] = l
              plen[k] = n; close(pooldir "/" k) } }
    FNR == 1 { if (f != "") done(); f = FILENAME; hdr = 1; id = ""; mid = ""; k = -1
               enc = 0; state = 0; ln = 0; bad = 0 }
    { sub(/\r$/, "") }
    hdr && /^X-Soak-Id: / { id = $2 }
    hdr && /^X-Soak-Body: / { k = $2 }
    hdr && /^Message-I[Dd]: / { mid = $2; sub(/^<soak\./, "", mid); sub(/@.*/, "", mid) }
    hdr && /^Content-Type: application\/pkcs7-mime/ { enc = 1 }
    hdr && /^$/ { hdr = 0; next }
    !hdr && state == 0 && /^soak-begin / { state = 1; next }
    !hdr && state == 1 && /^soak-end / { state = 2; if (ln != plen[k]) bad = 1; next }
    !hdr && state == 1 { ln++; if (pool[k, ln] != $0) bad = 1 }
    function done() { if (state != 2) bad = 1
        printf "%s %s %s\n", (id != "" ? id : mid), (enc ? "encrypted" : "plain"), (bad ? "bad" : "ok") }
    END { if (f != "") done() }' > delivered.lst
DELIVERED=$(wc -l < delivered.lst)
cut -d' ' -f1 delivered.lst | sort > ids.lst
DISTINCT=$(uniq < ids.lst | wc -l)
DUPS=$(uniq -d < ids.lst | wc -l)
DUP_COPIES=$((DELIVERED - DISTINCT))
cat acc.* 2>/dev/null | sort -u > accepted.lst
LOST=$(comm -23 accepted.lst <(uniq < ids.lst) | wc -l)
UNKNOWN=$(comm -13 accepted.lst <(uniq < ids.lst) | wc -l)
ENC_ARR=$(grep -c ' encrypted ' delivered.lst)
BAD=$(grep -c ' bad$' delivered.lst)
ENCRYPTED_OUT=$(grep -c 'route=out .*action=encrypt .*status=sent' regigated.log)
DECRYPTED_IN=$(grep -c 'route=in .*action=decrypt .*status=sent .*decrypt=ok' regigated.log)
DEFERRED=$(grep -c 'status=deferred' regigated.log)
PF_DEFERRED=$(grep -Ec 'postfix/regigate-(out|in)/smtp\[[0-9]+\]: [0-9A-F]+: to=<.*status=deferred' "$PF_LOG")

[ "$LOST" -eq 0 ]; ok $? "zero loss: every accepted message reached the sink ($LOST lost)"
[ "$LOST" -ne 0 ] && diag "lost: $(comm -23 accepted.lst <(uniq < ids.lst) | head -n 20 | paste -sd' ')"
[ "$DISTINCT" -eq "$ACC" ] && [ "$UNKNOWN" -eq 0 ]
ok $? "the sink holds exactly the $ACC accepted ids ($DISTINCT distinct, $UNKNOWN unknown)"
[ "$ENC_ARR" -eq 0 ]; ok $? "every message arrived decrypted ($ENC_ARR still encrypted)"
[ "$BAD" -eq 0 ]; ok $? "every body arrived intact ($BAD damaged)"
[ "$ENCRYPTED_OUT" -ge $((N * 9 / 10)) ]
ok $? "regigated encrypted at least the 90% [secure] messages ($ENCRYPTED_OUT encrypt lines)"
RATE=$(awk -v n="$DISTINCT" -v t="$((T_END - T0))" 'BEGIN { printf "%.1f", (t > 0 ? n / t : 0) }')

REPORT=$(cat <<EOF
soak report
  command:            SOAK_N=$N SOAK_SEED=$SEED SOAK_CLIENTS=$CLIENTS SOAK_PAUSE="$PAUSE_MIN $PAUSE_MAX" t/soak/soak.sh
  seed:               $SEED
  messages submitted: $N (accepted $ACC, refused $REJ)
  at the sink:        $DELIVERED transactions, $DISTINCT distinct ids
  lost:               $LOST
  duplicates:         $DUPS ids ($DUP_COPIES extra copies)
  still encrypted:    $ENC_ARR
  damaged bodies:     $BAD
  regigated lines:    $ENCRYPTED_OUT encrypted (out), $DECRYPTED_IN decrypted (in), $DEFERRED deferred (451)
  Postfix deferrals:  $PF_DEFERRED deliveries to regigated deferred and retried
  faults:             ${#FAULTS[@]} ($(for k in "${KINDS[@]}"; do printf '%s=%s ' "$k" "${NFAULT[$k]:-0}"; done))
  regigated starts:   $RG_STARTS (start retried $RG_BIND_RETRIES times)
  time:               $((T_SUBMIT_END - T0)) s until the last fault, $((T_END - T0)) s in all, $RATE messages/s end to end
  fault schedule:     ${FAULTS[*]}
EOF
)
printf '%s\n' "$REPORT" | sed 's/^/# /'
[ -n "${SOAK_REPORT:-}" ] && printf '%s\n' "$REPORT" > "$SOAK_REPORT"
grep -q 'regigated.*\(panic\|assert\)' regigated.log
[ $? -ne 0 ]; ok $? "no panic or assertion in regigated's log"
t_done
