#!/bin/bash
# t/integration/fault_provider_kill.sh - the key provider killed (SIGKILL)
# in the middle of a request, on the encrypting and on the decrypting leg.
# regigated must answer 451 4.7.0 (never pass the message on in clear, never
# lose it), Postfix must keep the message queued (postqueue -p shows it with
# regigated's reason), and once the provider is back it is delivered exactly
# once, decrypted at the end of the chain.
#
#   swaks -> public smtpd "out" -> queue -> regigated route out (encrypt)
#         -> public smtpd "in" -> queue -> regigated route in (decrypt)
#         -> reinjection smtpd -> queue -> smtp-sink
#
# "Mid-request": the provider is first stopped (SIGSTOP; the kernel still
# accepts the connection), the test waits until a worker of the route holds
# a connection to it, then kills it. For the decrypting leg the message is
# first held in front of route in (defer_transports = regigate-in) until
# the provider is stopped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"
. "$(dirname "$0")/provider_lib.sh"

pf_require
need swaks smtp-sink ss timeout
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"
[ -x "$PROVIDER" ] || skip_all "regigate-provider not built ($PROVIDER)"

plan 21

FROM=alice@example.com
RCPT=bob@example.org
cd "$T_DIR" || exit 1
prov_init "$FROM" "$RCPT"
ok $? "provider: init, serve, gateway, accounts" || diag "$(cat "$PROV_DIR"/*.out)"

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
max_servers = 6
min_spare_servers = 1
max_spare_servers = 3

[route out]
listen = 127.0.0.1:$OUT_PORT
reinject = 127.0.0.1:$(pf_public_port in)
rules = $T_DIR/out.json
$(PROV_TIMEOUT=60 prov_route_lines)

[route in]
listen = 127.0.0.1:$IN_PORT
reinject = 127.0.0.1:$PF_REINJECT_PORT
rules = $T_DIR/in.json
account_cache_ttl = 0
account_cache_negative_ttl = 0
$(PROV_TIMEOUT=60 prov_route_lines)
EOF
echo '{ "rules": [], "default": { "action": "encrypt" } }' > out.json
echo '{ "rules": [], "default": { "action": "decrypt" } }' > in.json
prov_certs rg.conf out && start_regigated rg.conf && wait_port "$IN_PORT" 5
ok $? "regigated: route out encrypts, route in decrypts" || diag "$(cat "$PROV_DIR/ctl.err" regigated.log)"
pf_configure && pf_start
ok $? "private Postfix instance: out -> regigated -> in -> regigated -> sink" ||
    { diag "$(tail -n 20 "$PF_LOG" postfix-ctl.log)"; t_done; }

send() {   # send MARKER: prints the queue id
    printf 'From: <%s>\nTo: <%s>\nSubject: %s\nMessage-ID: <%s@example.com>\n\nmarker %s\n' \
        "$FROM" "$RCPT" "$1" "$1" "$1" > "$1.eml"
    timeout 40 swaks --server "127.0.0.1:$(pf_public_port out)" --helo client.rgtest.invalid \
        --from "$FROM" --to "$RCPT" --data "@$1.eml" --timeout 30 > "$1.swaks" 2>&1
    sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$1.swaks" | tail -n 1
}
sock_pids() {
    ss -Htnp state established "( $1 = :$2 )" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}
# wait_in_request PORT: until a worker serving route PORT is connected to the provider
wait_in_request() {
    local i p
    for ((i = 0; i < 150; i++)); do
        for p in $(sock_pids sport "$1"); do
            [ "$(ps -o ppid= -p "$p" | tr -d ' ')" = "$REGIGATED_PID" ] || continue
            sock_pids dport "$PPORT" | grep -qx "$p" && return 0
        done
        sleep 0.1
    done
    return 1
}
# queued QID: postqueue -p lists QID; its reason line goes to $T_DIR/pq.QID
queued() {
    timeout 10 postqueue -c "$PF_CONF" -p > "pq.$1" 2>&1
    grep -q "^$1[*!]\? " "pq.$1"
}
# at_sink MARKER: how many sink files hold the decrypted MARKER
at_sink() { sink_files "$SINK" | xargs -r grep -l -F -- "marker $1" | wc -l; }

# ---- encrypting leg ------------------------------------------------------------------
M1="pkill-out-$$"
kill -STOP "$PROVIDER_PID"
Q1=$(send "$M1")
[ -n "$Q1" ]; ok $? "message 1 accepted (queue id ${Q1:-none}), provider stopped"
wait_in_request "$OUT_PORT"
ok $? "a worker of route out waits for the provider"
prov_kill
pf_log_wait "postfix/regigate-out/smtp\[[0-9]+\]: $Q1: to=<$RCPT>.*status=deferred \(host .* said: 451 4\.7\.0 " 15
ok $? "provider killed mid-request: Postfix logs 451 4.7.0 from regigated, deferred"
diag "$(grep -E "$Q1: to=<" "$PF_LOG" | tail -n 1 | sed 's/.*status=/status=/')"
queued "$Q1" && grep -q '451 4.7.0 Error: key provider' "pq.$Q1" && [ "$(sink_count "$SINK")" -eq 0 ]
ok $? "postqueue -p: $Q1 stays queued with regigated's reason; nothing at the sink"
mapfile -t pq < <(sed -n '2,4p' "pq.$Q1"); diag "${pq[@]}"
grep -q ": $Q1: route=out .*action=encrypt .*status=deferred reply=(451 4.7.0 " regigated.log
ok $? "regigated logged $Q1 as deferred (451 4.7.0)"

# still down at the next retry: still queued (Postfix retries after minimal_backoff_time)
pf_flush
for ((i = 0; i < 100; i++)); do
    [ "$(grep -Ec "regigate-out/smtp\[[0-9]+\]: $Q1: to=<$RCPT>.*status=deferred" "$PF_LOG")" -ge 2 ] && break
    sleep 0.1
done
queued "$Q1" && [ "$i" -lt 100 ]
ok $? "a retry while the provider is still down: deferred again, still queued"

prov_start
ok $? "provider restarted"
pf_flush
pf_wait_empty 40
ok $? "Postfix's queue drains"
for ((i = 0; i < 30; i++)); do [ "$(at_sink "$M1")" -ge 1 ] && break; sleep 0.1; done
[ "$(at_sink "$M1")" -eq 1 ] && [ "$(sink_count "$SINK")" -eq 1 ]
ok $? "message 1 arrived exactly once, decrypted (sink: $(sink_count "$SINK"))"

# ---- decrypting leg ---------------------------------------------------------------
# hold messages in front of route in, so that the provider can be stopped
# after route out has encrypted
PF_MAIN_EXTRA="defer_transports = regigate-in" pf_configure && pf_reload
M2="pkill-in-$$"
Q2=$(send "$M2")
[ -n "$Q2" ]; ok $? "message 2 accepted (queue id ${Q2:-none})"
pf_log_wait "postfix/regigate-out/smtp\[[0-9]+\]: $Q2: to=<$RCPT>.*status=sent" 15
ok $? "route out encrypted it; it waits in front of route in"
QIN=$(grep -E "postfix/regigate-out/smtp\[[0-9]+\]: $Q2: to=<.*status=sent" "$PF_LOG" |
    sed -n 's/.*queued as \([0-9A-Za-z]*\)).*/\1/p' | tail -n 1)
kill -STOP "$PROVIDER_PID"
PF_MAIN_EXTRA="" pf_configure && pf_reload
pf_flush
wait_in_request "$IN_PORT"
ok $? "a worker of route in waits for the provider (message ${QIN:-?})"
prov_kill
pf_log_wait "postfix/regigate-in/smtp\[[0-9]+\]: ${QIN:-NONE}: to=<$RCPT>.*status=deferred \(host .* said: 451 4\.7\.0 " 15
ok $? "provider killed mid-request: 451 4.7.0, deferred"
queued "$QIN" && [ "$(at_sink "$M2")" -eq 0 ] && [ "$(sink_files "$SINK" | xargs -r grep -l -- "$M2" | wc -l)" -eq 0 ]
ok $? "postqueue -p: ${QIN:-?} stays queued; nothing of it at the sink (not even encrypted)"
mapfile -t pq < <(sed -n '2,4p' "pq.$QIN"); diag "${pq[@]}"

prov_start
pf_flush
pf_wait_empty 40
ok $? "provider restarted, flush: Postfix's queue drains"
for ((i = 0; i < 30; i++)); do [ "$(at_sink "$M2")" -ge 1 ] && break; sleep 0.1; done
[ "$(at_sink "$M2")" -eq 1 ] && [ "$(sink_count "$SINK")" -eq 2 ]
ok $? "message 2 arrived exactly once, decrypted (sink: $(sink_count "$SINK"))"
kill -0 "$REGIGATED_PID" 2>/dev/null && [ "$(grep -c 'killed by signal\|exited with status' regigated.log)" -eq 0 ]
ok $? "regigated ran throughout, no worker died"
! grep -q 'replayed=yes' regigated.log || diag "a retried encryption reused its provider transaction (replayed=yes)"
ok 0 "summary: $(grep -c 'status=deferred' regigated.log) deferrals in regigated's log, $(sink_count "$SINK") messages delivered"
[ "$T_FAILED" -gt 0 ] && diag "$(tail -n 12 regigated.log)"
t_done
