# shellcheck shell=bash
# t/integration/provider_lib.sh - a real regigate-provider for one test, and
# a gateway certificate for regigated's routes (the set-up of crypto.sh, as
# functions). Source it after lib.sh.
#
#     prov_init alice@example.com bob@example.org ...   # provider + accounts
#     prov_route_lines >> rg.conf                       # in each [route ...]
#     prov_certs rg.conf ROUTE                          # after rg.conf exists
#     prov_stop / prov_kill / prov_start                # faults
#
# Everything lives under $T_DIR/prov (the provider's data) and
# $T_DIR/certs (the routes' cert_dir). PPORT is the provider's port.
PROVIDER=${REGIGATE_PROVIDER:-$top_builddir/src/regigate-provider/regigate-provider}
CTL=${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}
PROV_DIR=$T_DIR/prov
PROV_CERTS=$T_DIR/certs
PROVIDER_PID=

rgp() { "$PROVIDER" -c "$PROV_DIR/p.conf" "$@"; }

# prov_start: serve in the background, log to $PROV_DIR/provider.log
prov_start() {
    "$PROVIDER" -c "$PROV_DIR/p.conf" serve >> "$PROV_DIR/provider.log" 2>&1 &
    PROVIDER_PID=$!
    track "$PROVIDER_PID"
    wait_port "$PPORT" 10
}
prov_stop() { [ -n "$PROVIDER_PID" ] && t_stop_pid "$PROVIDER_PID"; }
prov_kill() {
    [ -n "$PROVIDER_PID" ] || return 0
    kill -CONT "$PROVIDER_PID" 2>/dev/null
    kill -9 "$PROVIDER_PID" 2>/dev/null
    wait "$PROVIDER_PID" 2>/dev/null
    return 0
}

# prov_init ACCOUNT...: a provider on a free port, one gateway (127.0.0.1),
# the accounts given
prov_init() {
    PPORT=$(free_port) || return 1
    mkdir -p "$PROV_DIR" "$PROV_CERTS"
    cat > "$PROV_DIR/p.conf" <<EOF
[provider]
listen = 127.0.0.1:$PPORT
data_dir = $PROV_DIR/data
threads = ${PROV_THREADS:-2}
EOF
    rgp init > "$PROV_DIR/init.out" 2>&1 && prov_start &&
        PROV_GW=$(rgp gateway add --ip 127.0.0.1 --description gw 2>> "$PROV_DIR/init.out") &&
        rgp account add "$@" >> "$PROV_DIR/init.out" 2>&1 &&
        cp "$PROV_DIR/data/ca.crt" "$PROV_CERTS/ca.crt"
}

# prov_route_lines: the provider settings of a route
prov_route_lines() {
    cat <<EOF
provider = https://localhost:$PPORT
provider_ca = $PROV_CERTS/ca.crt
cert_dir = $PROV_CERTS
provider_timeout = ${PROV_TIMEOUT:-5}
provider_connect_timeout = 2
EOF
}

# prov_certs CONF ROUTE: the route's key and CSR, signed by the provider,
# imported; readable by the daemon's user
prov_certs() {
    "$CTL" -c "$1" route cert-request "$2" > "$PROV_DIR/gw.csr" 2> "$PROV_DIR/ctl.err" &&
        rgp gateway sign "$PROV_GW" < "$PROV_DIR/gw.csr" > "$PROV_DIR/gw.crt" 2>> "$PROV_DIR/ctl.err" &&
        "$CTL" -c "$1" route cert-import "$2" < "$PROV_DIR/gw.crt" > /dev/null 2>> "$PROV_DIR/ctl.err" ||
        return 1
    [ "$(id -u)" = 0 ] && chown -R nobody "$PROV_CERTS"
    return 0
}
