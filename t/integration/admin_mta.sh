#!/bin/bash
# t/integration/admin_mta.sh - the CipherMail-style MTA settings ([mta] and
# a route's own keys) go into the generated Postfix configuration, which a
# private Postfix instance (postfix_lib.sh; configured, never started)
# accepts with "postfix check"; postconf shows every parameter in effect.
# Also: route set takes the settings and refuses bad ones; the after-filter
# limit below the before-filter one is a warning; a SASL password file
# readable by others is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/postfix_lib.sh"

pf_require
CTL=${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}
[ -x "$CTL" ] || skip_all "regigatectl not built ($CTL)"
need openssl

plan 17

ETC=$T_DIR/etc
CONF=$ETC/regigate.conf
ROUTES=$ETC/routes
mkdir -p "$ETC" "$T_DIR/spool"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ETC/ca.key" \
    -out "$ETC/provider-ca.crt" -subj /CN=test-provider-ca -days 30 >/dev/null 2>&1
pf_take_port PF_SINK_PORT
pf_take_port P_IN
BASE=$(pf_port)

# the tables the settings name
printf '/^Subject: make money fast/ REJECT spam detected\n' > "$ETC/header_checks"
printf '/^X-Route-In:/ IGNORE\n' > "$ETC/in_header_checks"
printf '192.168.88 REJECT your IP was black listed because it is sending spam\n' > "$ETC/client_black"
printf '10.1.2.3 OK\n' > "$ETC/client_white"
printf 'spammer@example.net REJECT\n' > "$ETC/sender_black"
printf 'partner.example smtp:[mx.partner.example]:2525\n' > "$ETC/transport"
printf '[relay.example.net]:587 gateway:secret\n' > "$ETC/sasl_passwd"
chmod 600 "$ETC/sasl_passwd"

cat > "$CONF" <<EOF
[global]
spool_dir = $T_DIR/spool
pid_file = $T_DIR/regigated.pid
routes_dir = $ROUTES
route_port_base = $BASE

[mta]
relay_domains = example.com .example.org
match_subdomains = yes
mynetworks = 127.0.0.0/8 192.168.1
myhostname = mx.example.com
smtp_helo_name = mx.example.com
internal_relay_host = 127.0.0.1:$PF_SINK_PORT
external_relay_host = relay.example.net:587
external_relay_host_mx = yes
message_size_limit = 100m
transport_maps = $ETC/transport
sasl_password_maps = $ETC/sasl_passwd
reject_unverified_recipient = yes
unverified_recipient_reject_code = 450
header_checks = $ETC/header_checks
rbl = zen.example.org bl.example.net=127.0.0.2
client_whitelist = $ETC/client_white
client_blacklist = $ETC/client_black
sender_blacklist = $ETC/sender_black
smtp_tls_security_level = may
smtpd_tls_security_level = may
EOF
ctl() { "$CTL" -c "$CONF" "$@"; }

ctl route add in --listen "127.0.0.1:$P_IN" --provider provider.test:8443 \
    --accept-domains example.com --forward-to "localhost:$PF_SINK_PORT" > "$T_DIR/add.out" 2>&1
ok $? "route add in"
ctl route set in --rbl rbl.example.com --match-subdomains no --smtpd-tls-security-level encrypt \
    --smtp-tls-security-level encrypt --header-checks "$ETC/in_header_checks" \
    --reject-unverified-recipient no --forward-to-mx yes --after-filter-size 200m > "$T_DIR/set.out" 2>&1
ok $? "route set in: its own MTA settings" || sed 's/^/# /' "$T_DIR/set.out"
ctl route set in --smtpd-tls-security-level dane > /dev/null 2> "$T_DIR/err"
[ $? = 1 ] && grep -q "smtpd_tls_security_level must be one of none, may, encrypt, not 'dane'" "$T_DIR/err" &&
    grep -qx "smtpd_tls_security_level = encrypt" "$ROUTES/in/route.conf"
ok $? "route set refuses a bad TLS level and keeps the route as it was"

pf_configure
ctl postfix generate --apply --no-reload --postfix-dir "$PF_CONF" > "$T_DIR/apply.out" 2>&1
ok $? "postfix generate --apply: postfix check passes" || sed 's/^/# /' "$T_DIR/apply.out"
grep -q "postfix check passed" "$T_DIR/apply.out"
ok $? "it says so"

pc() { postconf -c "$PF_CONF" -h "$1" 2>/dev/null; }
[ "$(pc relay_domains)" = "example.com, .example.org" ] && [ "$(pc mynetworks)" = "127.0.0.0/8, 192.168.1.0/24" ] &&
    pc parent_domain_matches_subdomains | grep -q "relay_domains, smtpd_access_maps$"
ok $? "relay domains, match subdomains, my networks"
[ "$(pc myhostname)" = mx.example.com ] && [ "$(pc smtp_helo_name)" = mx.example.com ]
ok $? "my hostname and HELO name"
[ "$(pc relay_transport)" = "relay:[127.0.0.1]:$PF_SINK_PORT" ] && [ "$(pc relayhost)" = "relay.example.net:587" ]
ok $? "internal relay host [host] (no MX) and external relay host with the mx option (no brackets)"
[ "$(pc message_size_limit)" = 104857600 ] && [ "$(pc transport_maps)" = "texthash:$ETC/transport" ]
ok $? "message_size_limit and SMTP transports"
[ "$(pc smtp_sasl_auth_enable)" = yes ] && [ "$(pc smtp_sasl_password_maps)" = "texthash:$ETC/sasl_passwd" ]
ok $? "SASL passwords for the relay hosts"
[ "$(pc smtpd_recipient_restrictions)" = reject_unverified_recipient ] && [ "$(pc unverified_recipient_reject_code)" = 450 ] &&
    [ "$(pc header_checks)" = "regexp:$ETC/header_checks" ]
ok $? "reject unverified recipient with its code; header checks"
[ "$(pc smtpd_client_restrictions)" = "check_client_access texthash:$ETC/client_white, check_client_access texthash:$ETC/client_black, reject_rbl_client zen.example.org, reject_rbl_client bl.example.net=127.0.0.2" ] &&
    [ "$(pc smtpd_sender_restrictions)" = "check_sender_access texthash:$ETC/sender_black" ]
ok $? "static white/black lists and RBLs"
[ "$(pc smtp_tls_security_level)" = may ] && [ "$(pc smtpd_tls_security_level)" = may ]
ok $? "TLS policy"
postconf -c "$PF_CONF" -P "127.0.0.1:$P_IN/inet/smtpd_client_restrictions" 2>/dev/null | grep -q "= check_client_access,texthash:$ETC/client_white,check_client_access,texthash:$ETC/client_black,reject_rbl_client,rbl.example.com$" &&
    postconf -c "$PF_CONF" -P "127.0.0.1:$P_IN/inet/smtpd_tls_security_level" 2>/dev/null | grep -q "= encrypt$" &&
    postconf -c "$PF_CONF" -P "127.0.0.1:$P_IN/inet/cleanup_service_name" 2>/dev/null | grep -q "= regigate-in-cleanup$" &&
    postconf -c "$PF_CONF" -P "regigate-in-cleanup/unix/header_checks" 2>/dev/null | grep -q "= regexp:$ETC/in_header_checks$" &&
    postconf -c "$PF_CONF" -P "regigate-in-out/unix/smtp_tls_security_level" 2>/dev/null | grep -q "= encrypt$"
ok $? "the route's public smtpd, cleanup and delivery carry its own settings (postconf -P)"
postconf -c "$PF_CONF" -P "127.0.0.1:$((BASE + 1))/inet/message_size_limit" 2>/dev/null | grep -q "= 209715200$" &&
    postconf -c "$PF_CONF" -P "127.0.0.1:$((BASE + 1))/inet/content_filter" 2>/dev/null | grep -q "= regigate-in-out:localhost:$PF_SINK_PORT$"
ok $? "after-filter limit on the reinjection smtpd; forward_to with the mx option"

ctl route set in --after-filter-size 1k > /dev/null 2>&1
ctl postfix generate --output "$T_DIR/gen" > /dev/null 2> "$T_DIR/warn.err"
grep -q "^regigatectl: warning: route in: after_filter_message_size_limit (1024) is smaller than max_message_size (52428800)" "$T_DIR/warn.err"
ok $? "an after-filter limit below the before-filter limit is a warning"
chmod 644 "$ETC/sasl_passwd"
ctl postfix generate --output "$T_DIR/gen" > /dev/null 2> "$T_DIR/sasl.err"
[ $? = 1 ] && grep -q "sasl_password_maps $ETC/sasl_passwd has mode 0644: it holds passwords, make it 0600" "$T_DIR/sasl.err"
ok $? "a SASL password file readable by others is refused"

t_done
