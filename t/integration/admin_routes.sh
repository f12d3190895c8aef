#!/bin/bash
# t/integration/admin_routes.sh - regigatectl route add/list/show/set/remove
# and postfix generate --apply against a private Postfix instance
# (postfix_lib.sh) and the real regigated, all in the test's scratch
# directory (regigate.conf with routes_dir inside it; nothing under /etc
# is touched except postfix_lib.sh's registration of the instance).
#
#   route out: 127.0.0.1:P_OUT, accept_from 127.0.0.1, forward_to the sink
#   route in:  127.0.0.1:P_IN, accept_domains example.com, forward_to the sink
#
# Checks: validation (open relay, address not on the host, duplicate
# address, bad accept_from), the files of a route and their modes, ids and
# loopback ports, generate is deterministic, --apply merges into main.cf and
# master.cf and Postfix's and regigated's listeners follow add and remove,
# mail flows through both routes, a recipient domain outside accept_domains
# is refused, and a removed id is given out again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
need swaks smtp-sink ss timeout openssl cmp
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"
CTL=${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}
[ -x "$CTL" ] || skip_all "regigatectl not built ($CTL)"

plan 51

ETC=$T_DIR/etc
CONF=$ETC/regigate.conf
ROUTES=$ETC/routes
mkdir -p "$ETC" "$T_DIR/spool"
chown nobody "$T_DIR/spool"; chmod 700 "$T_DIR/spool"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ETC/ca.key" \
    -out "$ETC/provider-ca.crt" -subj /CN=test-provider-ca -days 30 >/dev/null 2>&1

# a base for the routes' loopback ports: ids 1..3 use base .. base+21
port_base() {
    local b i p busy
    for ((i = 0; i < 50; i++)); do
        b=$(free_port) || return 1
        busy=0
        for p in $b $((b + 1)) $((b + 10)) $((b + 11)) $((b + 20)) $((b + 21)); do
            ss -Htan "( sport = :$p )" | grep -q . && busy=1
            case "$PF_USED_PORTS" in *" $p "*) busy=1 ;; esac
        done
        [ "$busy" = 0 ] && { echo "$b"; return 0; }
    done
    return 1
}
BASE=$(port_base)
PF_USED_PORTS="$PF_USED_PORTS$BASE $((BASE + 1)) $((BASE + 10)) $((BASE + 11)) $((BASE + 20)) $((BASE + 21)) "
pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port P_OUT
pf_take_port P_IN
pf_take_port P_X

cat > "$CONF" <<EOF
[global]
user = nobody
spool_dir = $T_DIR/spool
pid_file = $T_DIR/regigated.pid
routes_dir = $ROUTES
route_port_base = $BASE
max_servers = 2
min_spare_servers = 1
max_spare_servers = 1
EOF

ctl() { "$CTL" -c "$CONF" "$@"; }
# ctl_fails PATTERN ARGS...: exit status 1 and PATTERN on stderr
ctl_fails() {
    local pat=$1 rc; shift
    ctl "$@" > "$T_DIR/out" 2> "$T_DIR/err"; rc=$?
    [ "$rc" = 1 ] && grep -q -- "$pat" "$T_DIR/err" || { cat "$T_DIR/err" >&2; return 1; }
}

# ---- route add and its checks ------------------------------------------------
ctl route list > "$T_DIR/out" 2>&1
ok $? "route list works without any route"

ctl route add out --listen "127.0.0.1:$P_OUT" --provider provider.test:8443 \
    --accept-from "127.0.0.1 10.1" --forward-to "127.0.0.1:$PF_SINK_PORT" > "$T_DIR/out" 2>&1
ok $? "route add out"
grep -q "route out added: id 1, public smtpd 127.0.0.1:$P_OUT, regigated 127.0.0.1:$BASE, reinjection 127.0.0.1:$((BASE + 1))" "$T_DIR/out"
ok $? "route out got id 1 and ports $BASE/$((BASE + 1))"
[ "$(cat "$ROUTES/out/rules.json")" = "{}" ]
ok $? "route out starts with the empty rule set"
[ -d "$ROUTES/out/lists" ] && [ "$(stat -c %a "$ROUTES/out")" = 700 ]
ok $? "route out has lists/ and its directory is 0700"
[ "$(stat -c %a "$ROUTES/out/key_cert.pem")" = 600 ]
ok $? "key_cert.pem is 0600"
openssl x509 -in "$ROUTES/out/key_cert.pem" -noout -checkend $((9 * 365 * 86400)) >/dev/null &&
    openssl pkey -in "$ROUTES/out/key_cert.pem" -noout 2>/dev/null
ok $? "key_cert.pem holds a key and a certificate valid for more than 9 years"
grep -qx "accept_from = 127.0.0.1 10.1.0.0/16" "$ROUTES/out/route.conf"
ok $? "accept-from prefix 10.1 is written as 10.1.0.0/16"

ctl_fails "open relay" route add relay --listen "127.0.0.1:$P_X" --provider provider.test:8443 \
    --accept-domains example.com
ok $? "a route to the Internet without accept-from is refused (open relay)"
[ ! -e "$ROUTES/relay" ]
ok $? "nothing is left of the refused route"
ctl_fails "not an address of this host" route add far --listen 192.0.2.1:25 \
    --provider provider.test:8443 --accept-from 10.0.0.0/8
ok $? "a listen address that is not on the host is refused"
ctl_fails "already the address of route 'out'" route add dup --listen "127.0.0.1:$P_OUT" \
    --provider provider.test:8443 --accept-from 10.0.0.0/8
ok $? "a listen address in use by another route is refused"
ctl_fails "has bits set after the first 24" route add badnet --listen "127.0.0.1:$P_X" \
    --provider provider.test:8443 --accept-from 192.168.1.1/24
ok $? "an accept-from network with host bits is refused"
ctl_fails "neither\|needs --accept-from or --accept-domains" route add open2 \
    --listen "127.0.0.1:$P_X" --provider provider.test:8443 --forward-to 127.0.0.1:25
ok $? "a route without accept-from and accept-domains is refused"
ctl_fails "exists already" route add out --listen "127.0.0.1:$P_X" \
    --provider provider.test:8443 --accept-from 10.0.0.0/8
ok $? "a second route out is refused"

ctl route add in --listen "127.0.0.1:$P_IN" --provider provider.test:8443 \
    --accept-domains "example.com" --forward-to "127.0.0.1:$PF_SINK_PORT" --max-size 1m \
    > "$T_DIR/out" 2>&1
ok $? "route add in"
grep -q "id 2, public smtpd 127.0.0.1:$P_IN, regigated 127.0.0.1:$((BASE + 10))" "$T_DIR/out"
ok $? "route in got id 2 and ports $((BASE + 10))/$((BASE + 11))"
ctl route list > "$T_DIR/list" 2>&1 &&
    grep -Eq "^1 +out +127.0.0.1:$P_OUT +127.0.0.1:$BASE " "$T_DIR/list" &&
    grep -Eq "^2 +in +127.0.0.1:$P_IN +127.0.0.1:$((BASE + 10)) " "$T_DIR/list"
ok $? "route list shows both routes"
ctl route show in > "$T_DIR/show" 2>&1 && grep -qx "max_message_size = 1048576" "$T_DIR/show" &&
    grep -qx "accept_domains = example.com" "$T_DIR/show"
ok $? "route show prints the settings"

# ---- route set ----------------------------------------------------------------
ctl_fails "open relay" route set out --forward-to "" --accept-from ""
ok $? "route set refuses to make route out an open relay"
grep -qx "forward_to = 127.0.0.1:$PF_SINK_PORT" "$ROUTES/out/route.conf"
ok $? "and route.conf is unchanged"
ctl route set out --accept-from "127.0.0.1 192.168.7" > "$T_DIR/out" 2>&1 &&
    grep -qx "accept_from = 127.0.0.1 192.168.7.0/24" "$ROUTES/out/route.conf" &&
    [ "$(grep -c '^accept_from' "$ROUTES/out/route.conf")" = 1 ]
ok $? "route set replaces accept_from"

# ---- postfix generate ---------------------------------------------------------
ctl postfix generate --output "$T_DIR/gen1" > /dev/null 2>&1 &&
    ctl postfix generate --output "$T_DIR/gen2" > /dev/null 2>&1 &&
    cmp -s "$T_DIR/gen1/master.cf" "$T_DIR/gen2/master.cf" &&
    cmp -s "$T_DIR/gen1/main.cf" "$T_DIR/gen2/main.cf"
ok $? "postfix generate twice gives the same bytes"
grep -q "^127.0.0.1:$P_IN inet n - n - - smtpd$" "$T_DIR/gen1/master.cf" &&
    grep -qx "  -o smtpd_relay_restrictions=check_recipient_access,inline:{example.com=OK},reject" "$T_DIR/gen1/master.cf" &&
    grep -qx "  -o content_filter=regigate-in:\[127.0.0.1\]:$((BASE + 10))" "$T_DIR/gen1/master.cf" &&
    grep -qx "  -o message_size_limit=1048576" "$T_DIR/gen1/master.cf"
ok $? "the generated master.cf has route in's public smtpd, restrictions and filter"

# ---- regigated and Postfix ----------------------------------------------------
sink_start "$PF_SINK_PORT" "$T_DIR/sink"
ok $? "smtp-sink listens"
"$REGIGATED" -f -c "$CONF" >> "$T_DIR/regigated.log" 2>&1 &
REGIGATED_PID=$!
track "$REGIGATED_PID"
wait_port "$BASE" 10 && wait_port "$((BASE + 10))" 10
ok $? "regigated listens for both routes"

# (postfix_lib.sh's master.cf has no tlsmgr; a stock master.cf has, and
# the routes' public smtpd offer STARTTLS)
pf_configure && echo "tlsmgr unix - - n 1000? 1 tlsmgr" >> "$PF_CONF/master.cf" && pf_start
ok $? "private Postfix instance started"
ctl postfix generate --apply --postfix-dir "$PF_CONF" > "$T_DIR/apply.out" 2>&1
ok $? "postfix generate --apply"
grep -q "postfix check passed" "$T_DIR/apply.out" && grep -q "postfix reloaded" "$T_DIR/apply.out" &&
    grep -q "regigated reloaded" "$T_DIR/apply.out"
ok $? "--apply checked, reloaded Postfix and signalled regigated"
grep -q "^regigate-in_destination_concurrency_limit = 2$" "$PF_CONF/main.cf" &&
    grep -q "^relayhost = \[127.0.0.1\]:$PF_SINK_PORT$" "$PF_CONF/main.cf" &&
    grep -q "^pickup " "$PF_CONF/master.cf"
ok $? "main.cf and master.cf keep their own settings beside the generated block"
wait_port "$P_OUT" 20 && wait_port "$P_IN" 20
ok $? "Postfix listens on both public addresses"

swaks_pf() { timeout 30 swaks --server "127.0.0.1:$1" --helo test.example "${@:2}"; }
swaks_pf "$P_OUT" --from a@origin.test --to b@far.test --header "Subject: out-1" > "$T_DIR/s1" 2>&1
ok $? "route out accepts mail from 127.0.0.1 to any domain"
swaks_pf "$P_IN" --tls --from a@far.test --to user@example.com --header "Subject: in-1" > "$T_DIR/s2" 2>&1
ok $? "route in accepts mail for example.com, over STARTTLS"
grep -q "subject=CN *= *$(hostname)" "$T_DIR/s2" || grep -qi "TLS started" "$T_DIR/s2"
ok $? "the public smtpd speaks TLS with the route's key_cert.pem"
swaks_pf "$P_IN" --from a@far.test --to user@other.test > "$T_DIR/s3" 2>&1
grep -q "554 5.7.1 <user@other.test>: Recipient address rejected: Access denied" "$T_DIR/s3"
ok $? "route in refuses mail for a domain outside accept_domains (127.0.0.1 is not in accept_from)"
pf_wait_empty 30 && wait_files_n() { local i; for ((i = 0; i < 200; i++)); do [ "$(sink_count "$T_DIR/sink")" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_files_n 2
ok $? "both messages reached the sink"
grep -l "Subject: out-1" "$T_DIR"/sink/msg.* >/dev/null 2>&1 && grep -l "Subject: in-1" "$T_DIR"/sink/msg.* >/dev/null 2>&1
ok $? "the sink has route out's and route in's message"
grep -Eq "route=out .*status=sent" "$T_DIR/regigated.log" && grep -Eq "route=in .*status=sent" "$T_DIR/regigated.log"
ok $? "regigated passed one message on each route"
grep -q "postfix/regigate-in-out/smtp.*status=sent" "$PF_LOG"
ok $? "route in's mail left through its forward_to transport"

# ---- remove and add again --------------------------------------------------------
ctl route remove in > "$T_DIR/out" 2>&1
ok $? "route remove in"
[ ! -e "$ROUTES/in" ] && ! ls -A "$ROUTES" | grep -q '^\.in'
ok $? "route in's directory is gone entirely"
ctl postfix generate --apply --postfix-dir "$PF_CONF" > "$T_DIR/apply2.out" 2>&1
ok $? "postfix generate --apply after the removal"
! grep -q "regigate-in" "$PF_CONF/master.cf" && ! grep -q "regigate-in_" "$PF_CONF/main.cf"
ok $? "route in is gone from main.cf and master.cf"
gone() { local i; for ((i = 0; i < 100; i++)); do ss -Hltn "sport = :$1" | grep -q . || return 0; sleep 0.1; done; return 1; }
gone "$P_IN"
ok $? "Postfix no longer listens on route in's public address"
gone "$((BASE + 10))"
ok $? "regigated no longer listens on route in's port"
ss -Hltn "sport = :$P_OUT" | grep -q . && ss -Hltn "sport = :$BASE" | grep -q .
ok $? "route out still listens"
swaks_pf "$P_OUT" --from a@origin.test --to c@far.test --header "Subject: out-2" > "$T_DIR/s4" 2>&1
ok $? "route out still takes mail"

ctl route add in2 --listen "127.0.0.1:$P_X" --provider provider.test:8443 \
    --accept-from 127.0.0.1 > "$T_DIR/out" 2>&1 && grep -q "id 2," "$T_DIR/out"
ok $? "the next route takes the first free id, 2"
ctl postfix generate --apply --postfix-dir "$PF_CONF" > "$T_DIR/apply3.out" 2>&1 &&
    wait_port "$P_X" 20 && wait_port "$((BASE + 10))" 20
ok $? "after --apply Postfix and regigated listen for route in2"
ctl route remove out > /dev/null 2>&1 && ctl route remove in2 > /dev/null 2>&1 &&
    ctl postfix generate --apply --postfix-dir "$PF_CONF" > "$T_DIR/apply4.out" 2>&1
ok $? "removing every route and applying works"
! grep -q "^127.0.0.1:$P_OUT " "$PF_CONF/master.cf"
ok $? "no route is left in master.cf"

t_done
