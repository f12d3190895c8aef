# shellcheck shell=bash
# t/integration/postfix_lib.sh - a private Postfix instance for one test.
# Source it after lib.sh:
#
#     . "$(dirname "$0")/lib.sh"
#     . "$(dirname "$0")/postfix_lib.sh"
#
# The instance lives entirely in the test's scratch directory:
#     $T_DIR/postfix/etc     config_directory (main.cf, master.cf)
#     $T_DIR/postfix/queue   queue_directory
#     $T_DIR/postfix/data    data_directory
#     $T_DIR/postfix.log     maillog_file (via postlogd, no syslog needed)
# It listens only on 127.0.0.1 (ports from free_port), never looks at DNS,
# never delivers locally, and relays everything to [127.0.0.1]:$PF_SINK_PORT.
# Its config directory is registered in alternate_config_directories of the
# default /etc/postfix/main.cf (Postfix's rule for using a non-default
# config directory) for as long as the test runs; the entry is removed again on exit. The system instance is
# never started.
#
# Typical use:
#     pf_require                        # skip_all unless root and Postfix
#     pf_take_port PF_SINK_PORT; sink_start "$PF_SINK_PORT" "$T_DIR/sink"
#     pf_take_port PF_REINJECT_PORT     # (optional; else pf_configure picks one)
#     pf_route test smtp "$FILTER_PORT" # public smtpd -> regigate-test -> filter
#     pf_configure && pf_start
#     ... swaks --server 127.0.0.1:"$(pf_public_port test)" ...
#     pf_wait_empty 20
#
# Functions: pf_require, pf_take_port, pf_route, pf_configure, pf_start,
# pf_stop, pf_reload, pf_set_reinject_opts, pf_queue_count, pf_queue_ids,
# pf_wait_empty, pf_flush, pf_public_port, pf_log_wait, sink_start,
# sink_count, sink_files, sink_body, sink_rcpts, sink_sender.
# The instance is stopped and unregistered by lib.sh's t_cleanup (wrapped at
# the end of this file), also when the test is ended by SIGTERM/SIGINT.

PF_DIR=$T_DIR/postfix
PF_CONF=$PF_DIR/etc
PF_QUEUE=$PF_DIR/queue
PF_DATA=$PF_DIR/data
PF_LOG=$T_DIR/postfix.log
PF_DEFAULT_CONF=/etc/postfix
# serialises edits of the default main.cf between tests running in parallel
PF_LOCK=/run/lock/regigate-tests-postfix-main.cf.lock
[ -d /run/lock ] || PF_LOCK=/tmp/regigate-tests-postfix-main.cf.lock

PF_ROUTES=()            # "name proto filter_port public_port xforward" per route
PF_USED_PORTS=" "       # ports handed out in this shell (free_port runs in
                        # a subshell when called as $(free_port), so its own
                        # memory of handed-out ports is lost)
PF_REGISTERED=0
PF_STARTED=0
: "${PF_REINJECT_OPTS:=}"   # extra "-o name=value" lines for the reinjection smtpd
: "${PF_MAIN_EXTRA:=}"      # extra main.cf lines
: "${PF_FILTER_CONCURRENCY:=4}"

# pf_port: a free port, distinct from every other port this test handed out
pf_port() {
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$(free_port) || return 1
        case "$PF_USED_PORTS" in *" $p "*) continue ;; esac
        PF_USED_PORTS="$PF_USED_PORTS$p "
        echo "$p"; return 0
    done
    return 1
}
# pf_take_port VAR: like pf_port, but assigns VAR in the calling shell, so the
# "already handed out" memory survives
pf_take_port() {
    local p
    p=$(pf_port) || return 1
    PF_USED_PORTS="$PF_USED_PORTS$p "
    printf -v "$1" '%s' "$p"
}

pf_require() {
    [ "$(id -u)" = 0 ] || skip_all "needs root to run a private Postfix instance"
    need postfix postconf postqueue postsuper flock ss
    [ -x "$(postconf -dh daemon_directory)/master" ] || skip_all "Postfix master daemon not found"
    getent passwd postfix >/dev/null || skip_all "no postfix user"
    getent group postdrop >/dev/null || skip_all "no postdrop group"
    getent passwd nobody >/dev/null || skip_all "no nobody user"
}

# pf_route NAME PROTO FILTER_PORT [XFORWARD]: one route pair. A public smtpd
# (its port in pf_public_port NAME) hands its mail to the transport
# regigate-NAME, an smtp(8) or lmtp(8) client that talks to the filter on
# 127.0.0.1:FILTER_PORT, with XFORWARD unless XFORWARD is "no".
pf_route() {
    local name=$1 proto=$2 fport=$3 xf=${4:-yes} pport
    case $proto in smtp | lmtp) ;; *) echo "pf_route: bad protocol $proto" >&2; return 1 ;; esac
    case $xf in yes | no) ;; *) echo "pf_route: XFORWARD must be yes or no" >&2; return 1 ;; esac
    pf_take_port pport || return 1
    PF_ROUTES+=("$name $proto $fport $pport $xf")
}

pf_public_port() {
    local r n p
    for r in "${PF_ROUTES[@]}"; do
        read -r n _ _ p _ <<< "$r"
        [ "$n" = "$1" ] && { echo "$p"; return 0; }
    done
    return 1
}

# ---- registration in the default main.cf -------------------------------------

# the entries of alternate_config_directories, one per line
pf_alt_dirs() {
    postconf -c "$PF_DEFAULT_CONF" -h alternate_config_directories 2>/dev/null |
        tr -s ', \t' '\n' | grep -v '^$'
}

pf_register() {
    (
        flock -w 30 9 || exit 1
        [ -f "$PF_DEFAULT_CONF/main.cf" ] || : > "$PF_DEFAULT_CONF/main.cf"
        if ! pf_alt_dirs | grep -qxF "$PF_CONF"; then
            { pf_alt_dirs; echo "$PF_CONF"; } | paste -sd, - | sed 's/,/, /g' |
                { read -r v; postconf -c "$PF_DEFAULT_CONF" -e "alternate_config_directories = $v"; }
        fi
    ) 9> "$PF_LOCK" || return 1
    PF_REGISTERED=1
}

pf_unregister() {
    [ "$PF_REGISTERED" = 1 ] || return 0
    (
        flock -w 30 9 || exit 1
        local rest
        rest=$(pf_alt_dirs | grep -vxF "$PF_CONF" | paste -sd, - | sed 's/,/, /g')
        if [ -n "$rest" ]; then
            postconf -c "$PF_DEFAULT_CONF" -e "alternate_config_directories = $rest"
        else
            postconf -c "$PF_DEFAULT_CONF" -X alternate_config_directories
        fi
    ) 9> "$PF_LOCK"
    PF_REGISTERED=0
}

# ---- configuration -----------------------------------------------------------

# pf_configure: write main.cf and master.cf. Needs PF_SINK_PORT and at least
# one pf_route; picks PF_REINJECT_PORT unless set.
pf_configure() {
    local r name proto fport pport xf nexthop
    [ -n "${PF_SINK_PORT:-}" ] || { echo "pf_configure: PF_SINK_PORT unset" >&2; return 1; }
    [ -n "${PF_REINJECT_PORT:-}" ] || pf_take_port PF_REINJECT_PORT || return 1
    mkdir -p "$PF_CONF" "$PF_QUEUE" "$PF_DATA"
    chown root:root "$PF_QUEUE"; chmod 755 "$PF_QUEUE"
    chown postfix:postfix "$PF_DATA"; chmod 700 "$PF_DATA"
    [ -f "$PF_LOG" ] || : > "$PF_LOG"   # not truncated when reconfiguring a running instance
    cat > "$PF_CONF/main.cf" <<EOF
# private Postfix instance of a regigate integration test (t/integration)
compatibility_level = 3.6
config_directory = $PF_CONF
queue_directory = $PF_QUEUE
data_directory = $PF_DATA
meta_directory = $PF_DEFAULT_CONF
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.rgtest.invalid
mydomain = rgtest.invalid
myorigin = \$myhostname
# loopback only; every service in master.cf names 127.0.0.1 explicitly too
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# no local delivery at all
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
local_transport = error:5.1.1 local delivery is disabled in this test
# everything that leaves goes to the test's sink
relayhost = [127.0.0.1]:$PF_SINK_PORT
relay_domains =
# no DNS, no TLS
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no
smtp_tls_security_level = none
lmtp_tls_security_level = none
smtpd_tls_security_level = none
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
# log to a file of the test (postlogd), not to syslog
maillog_file = $PF_LOG
maillog_file_prefixes = $T_DIR
biff = no
notify_classes =
# retry deferred mail within a test's lifetime
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s
transport_retry_time = 5s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
EOF
    for r in "${PF_ROUTES[@]}"; do
        read -r name _ _ _ _ <<< "$r"
        cat >> "$PF_CONF/main.cf" <<EOF
# route $name: as many parallel deliveries to the filter as it has workers
regigate-${name}_destination_concurrency_limit = $PF_FILTER_CONCURRENCY
regigate-${name}_destination_recipient_limit = 100
EOF
    done
    [ -n "$PF_MAIN_EXTRA" ] && printf '%s\n' "$PF_MAIN_EXTRA" >> "$PF_CONF/main.cf"

    {
        echo "# private Postfix instance of a regigate integration test (t/integration)"
        echo "# service type  private unpriv  chroot  wakeup  maxproc command + args"
        for r in "${PF_ROUTES[@]}"; do
            read -r name proto fport pport xf <<< "$r"
            if [ "$proto" = lmtp ]; then nexthop="inet:[127.0.0.1]:$fport"; else nexthop="[127.0.0.1]:$fport"; fi
            cat <<EOF
127.0.0.1:$pport inet n - n - - smtpd
  -o syslog_name=postfix/public-$name
  -o content_filter=regigate-$name:$nexthop
regigate-$name unix - - n - $PF_FILTER_CONCURRENCY $proto
  -o syslog_name=postfix/regigate-$name
  -o ${proto}_data_done_timeout=1200
  -o ${proto}_send_xforward_command=$xf
  -o ${proto}_dns_support_level=disabled
  -o ${proto}_tls_security_level=none
  -o max_use=20
EOF
        done
        cat <<EOF
127.0.0.1:$PF_REINJECT_PORT inet n - n - - smtpd
  -o syslog_name=postfix/reinject
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_helo_restrictions=
  -o smtpd_client_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o mynetworks=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
EOF
        [ -n "$PF_REINJECT_OPTS" ] && printf '%s\n' "$PF_REINJECT_OPTS" | sed 's/^/  /'
        cat <<EOF
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    } > "$PF_CONF/master.cf"
}

# pf_set_reinject_opts "-o a=b" ...: rewrite the reinjection smtpd's extra
# options in master.cf (call pf_reload afterwards when running)
pf_set_reinject_opts() {
    PF_REINJECT_OPTS=$(printf '%s\n' "$@")
    pf_configure
}

# ---- start / stop ------------------------------------------------------------

pf_master_pid() {
    local pid
    pid=$(sed -n '1s/[^0-9]//gp' "$PF_QUEUE/pid/master.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

pf_listen_ports() {
    local r name proto fport pport
    for r in "${PF_ROUTES[@]}"; do read -r name proto fport pport _ <<< "$r"; echo "$pport"; done
    echo "$PF_REINJECT_PORT"
}

pf_start() {
    local p
    pf_register || { echo "pf_start: cannot register $PF_CONF in $PF_DEFAULT_CONF/main.cf" >&2; return 1; }
    PF_STARTED=1
    timeout 60 postfix -c "$PF_CONF" start >> "$T_DIR/postfix-ctl.log" 2>&1 || {
        echo "pf_start: postfix start failed:" >&2; tail -n 20 "$T_DIR/postfix-ctl.log" >&2; return 1; }
    for p in $(pf_listen_ports); do
        wait_port "$p" 20 || { echo "pf_start: nothing listens on $p" >&2; return 1; }
    done
}

pf_reload() {
    timeout 30 postfix -c "$PF_CONF" reload >> "$T_DIR/postfix-ctl.log" 2>&1
}

# pf_stop: `postfix stop` (which escalates to kill -9 of the process group
# after 5 s), then make sure the master process is really gone.
pf_stop() {
    local pid i
    [ "$PF_STARTED" = 1 ] || return 0
    pid=$(pf_master_pid)
    timeout 30 postfix -c "$PF_CONF" stop >> "$T_DIR/postfix-ctl.log" 2>&1
    if [ -n "$pid" ]; then
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            pkill -9 -P "$pid" 2>/dev/null
            kill -9 "$pid" 2>/dev/null
        fi
    fi
    PF_STARTED=0
}

# ---- queue -------------------------------------------------------------------

# pf_queue_count: messages in the queue (maildrop, incoming, active,
# deferred, hold, corrupt); reads the queue directories, so it works whether
# or not the instance runs
pf_queue_count() {
    local d n=0
    for d in maildrop incoming active deferred hold corrupt; do
        [ -d "$PF_QUEUE/$d" ] || continue
        n=$((n + $(find "$PF_QUEUE/$d" -type f | wc -l)))
    done
    echo "$n"
}

# pf_queue_ids [QUEUE...]: queue ids of the messages in those queues
# (default: deferred active incoming hold)
pf_queue_ids() {
    local d qs=("$@")
    [ $# -eq 0 ] && qs=(deferred active incoming hold)
    for d in "${qs[@]}"; do
        [ -d "$PF_QUEUE/$d" ] && find "$PF_QUEUE/$d" -type f -printf '%f\n'
    done
}

# pf_wait_empty SECONDS: until the queue is empty; fails after SECONDS
pf_wait_empty() {
    local i
    for ((i = 0; i < ${1:-20} * 10; i++)); do
        [ "$(pf_queue_count)" -eq 0 ] && return 0
        sleep 0.1
    done
    return 1
}

# pf_flush: ask the queue manager to retry all deferred mail now
pf_flush() {
    timeout 20 postqueue -c "$PF_CONF" -f
}

# pf_log_wait REGEX SECONDS: until the maillog has a line matching REGEX (ERE)
pf_log_wait() {
    local i
    for ((i = 0; i < ${2:-10} * 10; i++)); do
        grep -Eq -- "$1" "$PF_LOG" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---- final destination: smtp-sink -d ----------------------------------------

# sink_start PORT DIR [smtp-sink options...]: smtp-sink writing one file per
# mail transaction into DIR (smtp-sink's dump format: X-Client-Addr,
# X-Client-Proto, X-Helo-Args, X-Mail-Args, X-Rcpt-Args... and a 3-line
# Received header, then the message as received, then one empty line)
sink_start() {
    local port=$1 dir=$2; shift 2
    mkdir -p "$dir"
    chown nobody "$dir" 2>/dev/null
    smtp-sink -u nobody -d "$dir/msg." "$@" "127.0.0.1:$port" 64 > "$dir.log" 2>&1 &
    track $!
    wait_port "$port" 10
}

sink_files() { find "$1" -maxdepth 1 -type f -name 'msg.*' | sort; }
sink_count() { sink_files "$1" | wc -l; }

# sink_body FILE: the message body (after the first empty line of the
# message proper), without smtp-sink's trailing empty line; LF line ends
sink_body() {
    awk 'f { lines[n++] = $0; next }
         $0 == "" { f = 1 }
         END { if (n > 0 && lines[n-1] == "") n--; for (i = 0; i < n; i++) print lines[i] }' "$1"
}

# sink_rcpts FILE: the envelope recipients of the transaction, one a line
sink_rcpts() { sed -n 's/^X-Rcpt-Args: *<\([^>]*\)>.*/\1/p' "$1"; }
sink_sender() { sed -n 's/^X-Mail-Args: *<\([^>]*\)>.*/\1/p' "$1"; }

# ---- cleanup: Postfix goes first, then lib.sh's own cleanup -----------------

pf_cleanup() {
    pf_stop
    pf_unregister
}
eval "t_cleanup_lib() $(declare -f t_cleanup | tail -n +2)"
t_cleanup() { pf_cleanup; t_cleanup_lib; }
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP
