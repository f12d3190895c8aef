#!/bin/bash
# t/integration/admin_diagnose.sh - regigatectl diagnose against a healthy
# set-up made of the real programs: a private Postfix instance
# (postfix_lib.sh) with the configuration postfix generate --apply wrote, a
# real regigate-provider that signed the route's certificate, and the real
# regigated; then one thing is broken at a time and diagnose must name it
# with FAIL, a remedy and exit status 1:
#   the provider stopped, the spool directory readable by others, a
#   private key readable by others, a route changed without applying it
#   (Postfix blocks differ, message_size_limit too small), broken rules on
#   disk, regigated stopped, a broken configuration.
# DNS: myhostname is localhost, which /etc/hosts answers: no DNS query
# leaves the machine.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
need swaks smtp-sink ss timeout openssl
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"
CTL=${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}
PROVIDER=${REGIGATE_PROVIDER:-$top_builddir/src/regigate-provider/regigate-provider}
[ -x "$CTL" ] || skip_all "regigatectl not built ($CTL)"
[ -x "$PROVIDER" ] || skip_all "regigate-provider not built ($PROVIDER)"

plan 32

ETC=$T_DIR/etc
CONF=$ETC/regigate.conf
ROUTES=$ETC/routes
SPOOL=$T_DIR/spool
mkdir -p "$ETC" "$SPOOL"
chown nobody "$SPOOL"; chmod 700 "$SPOOL"

pf_take_port PF_SINK_PORT
pf_take_port PF_REINJECT_PORT
pf_take_port P_OUT
pf_take_port P_PROV
# regigated's two loopback ports for route id 1: BASE, BASE+1
for ((i = 0; i < 50; i++)); do
    pf_take_port BASE
    ss -Htan "( sport = :$((BASE + 1)) )" | grep -q . || break
done
PF_USED_PORTS="$PF_USED_PORTS$((BASE + 1)) "

# ---- the provider ---------------------------------------------------------------
cat > "$T_DIR/p.conf" <<EOF
[provider]
listen = 127.0.0.1:$P_PROV
data_dir = $T_DIR/pdata
threads = 2
EOF
rgp() { "$PROVIDER" -c "$T_DIR/p.conf" "$@"; }
start_provider() {
    "$PROVIDER" -c "$T_DIR/p.conf" serve >> "$T_DIR/provider.log" 2>&1 &
    PROVIDER_PID=$!
    track "$PROVIDER_PID"
    wait_port "$P_PROV" 10
}
rgp init > "$T_DIR/pinit.out" 2>&1 && start_provider
ok $? "regigate-provider runs on 127.0.0.1:$P_PROV"

cat > "$CONF" <<EOF
[global]
user = nobody
myhostname = localhost
spool_dir = $SPOOL
pid_file = $T_DIR/regigated.pid
routes_dir = $ROUTES
route_port_base = $BASE
max_servers = 2
min_spare_servers = 1
max_spare_servers = 1
EOF
ctl() { "$CTL" -c "$CONF" "$@"; }
# diag [ARGS]: run diagnose into $T_DIR/diag.out, its exit status in DIAG_RC
diag_run() { ctl diagnose --postfix-dir "$PF_CONF" "$@" > "$T_DIR/diag.out" 2>&1; DIAG_RC=$?; }
has() { grep -Eq -- "$1" "$T_DIR/diag.out" || { sed 's/^/# /' "$T_DIR/diag.out" >&2; return 1; }; }

ctl route add out --listen "127.0.0.1:$P_OUT" --provider "localhost:$P_PROV" \
    --provider-ca "$T_DIR/pdata/ca.crt" --accept-from 127.0.0.1 \
    --forward-to "127.0.0.1:$PF_SINK_PORT" --max-size 1m > "$T_DIR/add.out" 2>&1
ok $? "route add out"
GW=$(rgp gateway add --ip 127.0.0.1 --description "route out" 2> "$T_DIR/gw.err")
ctl route cert-request out > "$T_DIR/out.csr" 2> "$T_DIR/req.err" &&
    rgp gateway sign "$GW" < "$T_DIR/out.csr" > "$T_DIR/out.crt" 2> "$T_DIR/sign.err" &&
    ctl route cert-import out < "$T_DIR/out.crt" > "$T_DIR/imp.out" 2>&1
ok $? "route out is enrolled with the provider (gateway $GW)"

sink_start "$PF_SINK_PORT" "$T_DIR/sink"
"$REGIGATED" -f -c "$CONF" >> "$T_DIR/regigated.log" 2>&1 &
REGIGATED_PID=$!
track "$REGIGATED_PID"
wait_port "$BASE" 10
ok $? "regigated listens on $BASE"
pf_configure && echo "tlsmgr unix - - n 1000? 1 tlsmgr" >> "$PF_CONF/master.cf" && pf_start &&
    ctl postfix generate --apply --postfix-dir "$PF_CONF" > "$T_DIR/apply.out" 2>&1 &&
    wait_port "$P_OUT" 20 && wait_port "$((BASE + 1))" 20
ok $? "Postfix runs with the generated configuration"

# ---- healthy ------------------------------------------------------------------------
diag_run
[ "$DIAG_RC" = 0 ]
ok $? "diagnose on a healthy set-up exits 0" || sed 's/^/# /' "$T_DIR/diag.out"
! grep -Ev '^(OK|NOTE|WARN) +dns: ' "$T_DIR/diag.out" | grep -Eq '^(FAIL|WARN)'
ok $? "no check fails or warns (DNS aside, which depends on /etc/hosts)"
has "^OK +route out provider: https://localhost:$P_PROV accepts route out as gateway $GW$" &&
    has "^OK +route out certificate: provider certificate .* valid until .*\([0-9]+ days\)$"
ok $? "the provider accepts the route's certificate, which is valid"
has "^OK +route out listener: regigated answers on 127.0.0.1:$BASE: 220 " &&
    has "^OK +route out public smtpd: Postfix answers on 127.0.0.1:$P_OUT: 220 " &&
    has "^OK +route out reinjection: the reinjection smtpd answers on 127.0.0.1:$((BASE + 1)): 220 "
ok $? "regigated's listener, the public and the reinjection smtpd answer 220"
has "^OK +postfix main.cf: " && has "^OK +postfix master.cf: " &&
    has "^OK +postfix parameters: postconf -n agrees" &&
    has "^OK +postfix message_size_limit: main.cf message_size_limit = 10240000, at least the largest after-filter limit \(route out: 2097152\)" &&
    has "^OK +postfix running: "
ok $? "Postfix's files carry the current block, in effect, limit large enough, running"
has "^OK +spool: $SPOOL: mode 0700, owner nobody$" && has "^OK +spool space: " &&
    has "^OK +route out key file: $ROUTES/out/provider.key: mode 0600$" &&
    has "^OK +route out key file: $ROUTES/out/key_cert.pem: mode 0600$" &&
    has "^OK +route out tls certificate: .* valid until "
ok $? "spool, key modes and the public smtpd's certificate are OK"
has "^OK +route out rules: $ROUTES/out/rules.json: 0 rules, 0 lists$" && has "^OK +regigated: running, pid $REGIGATED_PID$"
ok $? "rules load; regigated runs"
has "^(OK|WARN|NOTE) +dns: (localhost: 127.0.0.1 -> localhost|skipped)"
ok $? "DNS: localhost checked forward and reverse (or skipped without a resolver)"
has "^diagnose: [0-9]+ OK, 0 WARN, 0 FAIL" || has "^diagnose: [0-9]+ OK, 1 WARN, 0 FAIL"
ok $? "the summary line counts"

# ---- the provider stopped -------------------------------------------------------------
t_stop_pid "$PROVIDER_PID"
diag_run
[ "$DIAG_RC" = 1 ]
ok $? "with the provider stopped, diagnose exits 1"
has "^FAIL route out provider: https://localhost:$P_PROV: provider temporarily unavailable: "
ok $? "the provider check is FAIL"
grep -A1 "^FAIL route out provider" "$T_DIR/diag.out" | grep -q "^     remedy: check that the provider runs and is reachable at https://localhost:$P_PROV"
ok $? "with its remedy"
ctl diagnose out --postfix-dir "$PF_CONF" --no-dns > "$T_DIR/diag1.out" 2>&1
[ $? = 1 ] && grep -q "^FAIL route out provider" "$T_DIR/diag1.out" && grep -q "^NOTE dns: skipped (--no-dns)" "$T_DIR/diag1.out"
ok $? "diagnose out (one route) says the same"
start_provider
diag_run
[ "$DIAG_RC" = 0 ]
ok $? "provider started again: exit 0"

# ---- the spool directory readable by others ----------------------------------------
chmod 750 "$SPOOL"
diag_run
[ "$DIAG_RC" = 1 ] && has "^FAIL spool: $SPOOL has mode 0750: other users can see" && has "^     remedy: chmod 700 $SPOOL$"
ok $? "spool mode 0750 is FAIL with the remedy chmod 700"
chmod 700 "$SPOOL"; chown root "$SPOOL"
diag_run
[ "$DIAG_RC" = 1 ] && has "^FAIL spool: $SPOOL is owned by uid 0, not by nobody" && has "^     remedy: chown nobody $SPOOL"
ok $? "a spool directory the daemon's user does not own is FAIL"
chown nobody "$SPOOL"

# ---- a private key readable by others ----------------------------------------------
chmod 644 "$ROUTES/out/provider.key"
diag_run
[ "$DIAG_RC" = 1 ] && has "^FAIL route out key file: $ROUTES/out/provider.key has mode 0644" && has "^     remedy: chmod 600 $ROUTES/out/provider.key"
ok $? "a provider key with mode 0644 is FAIL"
chmod 600 "$ROUTES/out/provider.key"

# ---- a route changed without applying it ---------------------------------------------
ctl route set out --max-size 20m > /dev/null 2>&1
diag_run
[ "$DIAG_RC" = 1 ] && has "^OK +postfix main.cf: " && has "^FAIL postfix master.cf: the regigate block in $PF_CONF/master.cf differs from what the routes give now"
ok $? "a change not applied: the Postfix block differs"
has "^     remedy: regigatectl postfix generate --apply --postfix-dir $PF_CONF$"
ok $? "remedy: postfix generate --apply"
has "^FAIL postfix message_size_limit: main.cf message_size_limit = 10240000 is less than the largest after-filter limit \(route out: 41943040,"
ok $? "main.cf's message_size_limit below twice the route limit is FAIL"
ctl route set out --max-size 1m > /dev/null 2>&1
postconf -c "$PF_CONF" -e "regigate-out_destination_recipient_limit = 7"
diag_run
has "^FAIL postfix parameters: postconf -n gives regigate-out_destination_recipient_limit = 7, the regigate block sets 100"
ok $? "a main.cf line after the block that overrides it is FAIL"
postconf -c "$PF_CONF" -X regigate-out_destination_recipient_limit
ctl postfix generate --apply --postfix-dir "$PF_CONF" > /dev/null 2>&1
diag_run
[ "$DIAG_RC" = 0 ]
ok $? "applied again: exit 0" || sed 's/^/# /' "$T_DIR/diag.out"

# ---- broken rules on disk --------------------------------------------------------------
cp "$ROUTES/out/rules.json" "$T_DIR/rules.good"
printf '{ "rules": [ { "name": "x", "action": "bogus" } ] }\n' > "$ROUTES/out/rules.json"
diag_run
[ "$DIAG_RC" = 1 ] && has "^FAIL route out rules: $ROUTES/out/rules.json:1:[0-9]+: .* \(1 error\)$"
ok $? "broken rules are FAIL with FILE:LINE:COL"
cp "$T_DIR/rules.good" "$ROUTES/out/rules.json"

# ---- regigated stopped -------------------------------------------------------------------
t_stop_pid "$REGIGATED_PID"
diag_run
[ "$DIAG_RC" = 1 ] && has "^FAIL regigated: not running" &&
    has "^FAIL route out listener: regigated on 127.0.0.1:$BASE: connect to 127.0.0.1:$BASE: Connection refused"
ok $? "regigated stopped: FAIL regigated and FAIL listener"

# ---- a broken configuration, an unknown route ---------------------------------------------
echo "bogus_key = 1" >> "$CONF"
diag_run
[ "$DIAG_RC" = 1 ] && has "^FAIL config: $CONF:[0-9]+: unknown key 'bogus_key'" && has "^diagnose: 0 OK, 0 WARN, 1 FAIL$"
ok $? "a configuration that does not load is FAIL"
sed -i '/^bogus_key/d' "$CONF"
ctl diagnose nosuch > "$T_DIR/diag2.out" 2>&1
[ $? = 1 ] && grep -q "no route 'nosuch'" "$T_DIR/diag2.out"
ok $? "diagnose of an unknown route fails"
ctl diagnose --bogus > /dev/null 2>&1
[ $? = 2 ]
ok $? "an unknown option is a usage error (2)"

t_done
