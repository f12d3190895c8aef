# shellcheck shell=bash
# t/integration/lib.sh - shared helpers of the integration tests. Source it.
#
# Every test: prints TAP, uses ports on 127.0.0.1 chosen by free_port (random
# high ports, checked free, so parallel runs do not collide), runs in its own
# scratch directory, and stops every process it started, by pid, on exit.
set -u

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
REGIGATED=${REGIGATED:-$top_builddir/src/regigated/regigated}
TESTSINK=${TESTSINK:-$top_builddir/t/helpers/rg-testsink}
PATH=$PATH:/usr/sbin:/usr/lib/postfix/sbin

T_NUM=0
T_FAILED=0
T_PIDS=()
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rgtest.XXXXXX")
chmod 755 "$T_DIR"

# ---- sanitizers and valgrind (doc/reliability.md, "Sanitizers and valgrind")
# RG_SAN_LOGS=DIR: an ASan+UBSan build; every program this test starts
#   writes its reports to DIR/TEST.asan.PID (not to its log, where no one
#   would look), and the test fails when such a file appears.
# RG_VALGRIND="valgrind OPTIONS": regigated, regigate-provider and
#   regigatectl run under it (through wrappers in $T_DIR/bin that exec it,
#   so a program keeps the pid the test tracks; forked workers stay under
#   valgrind), with logs in $RG_VG_LOGS/TEST.vg.PID; the test fails when a
#   log counts an error (its ERROR SUMMARY line: so no --quiet, which leaves
#   it out). Both directories are 1777: the daemons drop to nobody.
#   `make check-valgrind` sets it (Makefile.am).
T_NAME=$(basename "$0" .sh)
T_SLOW=1   # multiplier of the waits for a program to start or stop
if [ -n "${RG_SAN_LOGS:-}" ]; then
    mkdir -p "$RG_SAN_LOGS" && chmod 1777 "$RG_SAN_LOGS"
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$RG_SAN_LOGS/$T_NAME.asan"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$RG_SAN_LOGS/$T_NAME.asan"
    T_SLOW=3
fi
if [ -n "${RG_VALGRIND:-}" ]; then
    : "${RG_VG_LOGS:=$top_builddir/vg-logs}"
    mkdir -p "$RG_VG_LOGS" "$T_DIR/bin" && chmod 1777 "$RG_VG_LOGS"
    t_vg_wrap() {   # t_vg_wrap VAR PROGRAM: VAR names a wrapper of PROGRAM
        local w=$T_DIR/bin/${2##*/}
        printf '#!/bin/sh\nexec %s --log-file=%s/%s.vg.%%p %s "$@"\n' \
            "$RG_VALGRIND" "$RG_VG_LOGS" "$T_NAME" "$2" > "$w"
        chmod 755 "$w"
        export "$1=$w"
    }
    t_vg_wrap REGIGATED "$REGIGATED"
    t_vg_wrap REGIGATECTL "${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}"
    t_vg_wrap REGIGATE_PROVIDER "${REGIGATE_PROVIDER:-$top_builddir/src/regigate-provider/regigate-provider}"
    T_SLOW=10
fi
# t_tool_reports: print the sanitizer reports and valgrind logs with errors
# that this test's programs left; true when there are some
t_tool_reports() {
    local f found=1
    if [ -n "${RG_SAN_LOGS:-}" ]; then
        for f in "$RG_SAN_LOGS/$T_NAME".asan.*; do
            [ -e "$f" ] || continue
            found=0; echo "# sanitizer report $f:"; sed 's/^/#   /' "$f" | head -80
        done
    fi
    if [ -n "${RG_VALGRIND:-}" ]; then
        for f in "$RG_VG_LOGS/$T_NAME".vg.*; do
            [ -e "$f" ] || continue
            grep -Eq 'ERROR SUMMARY: [1-9]|impossible happened|Valgrind.* out of memory' "$f" || continue
            found=0; echo "# valgrind errors $f:"; sed 's/^/#   /' "$f" | head -120
        done
    fi
    return $found
}

plan() { echo "1..$1"; }
skip_all() { echo "1..0 # SKIP $*"; t_cleanup; exit 0; }
ok() {   # ok COND-EXIT-STATUS DESCRIPTION
    T_NUM=$((T_NUM + 1))
    if [ "$1" -eq 0 ]; then echo "ok $T_NUM - $2"; else echo "not ok $T_NUM - $2"; T_FAILED=$((T_FAILED + 1)); return 1; fi
}
check() { # check DESCRIPTION COMMAND...: ok when the command succeeds
    local d=$1; shift
    "$@" >/dev/null 2>&1; ok $? "$d"
}
diag() { printf '# %s\n' "$@"; }

# free_port: a random port that no socket uses, below the kernel's
# ephemeral range (outgoing connections take ports from that range, and a
# port in use by one cannot be bound even though nothing listens on it).
# It is usually called as $(free_port), in a subshell: the ports already
# handed out are remembered in a file, so two calls never return the same.
free_port() {
    local p i lo=15000 hi
    hi=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$hi" -gt $((lo + 2000)) ] || { lo=1100; }
    for ((i = 0; i < 500; i++)); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
        grep -qx "$p" "$T_DIR/.ports" 2>/dev/null && continue
        if ! ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null | grep -q .; then
            echo "$p" >> "$T_DIR/.ports"
            echo "$p"; return 0
        fi
    done
    echo "no free port" >&2; return 1
}

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT
# (SECONDS times T_SLOW: programs start slowly under ASan or valgrind)
wait_port() {
    local i
    for ((i = 0; i < ${2:-10} * 20 * T_SLOW; i++)); do
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
        sleep 0.05
    done
    return 1
}

# track PID: stop it (TERM, then KILL) when the test ends
track() { T_PIDS+=("$1"); }

t_stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null
    for ((i = 0; i < 100 * T_SLOW; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null
}

t_cleanup() {
    local pid kids
    for ((i = ${#T_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${T_PIDS[$i]}
        # the pool's workers, listed now: once the master is gone they
        # belong to init, and a worker stuck in a loop would outlive the test
        kids=$(pgrep -P "$pid" 2>/dev/null)
        t_stop_pid "$pid"
        # shellcheck disable=SC2086
        [ -n "$kids" ] && kill -9 $kids 2>/dev/null
    done
    # a report is a failure of the test, whatever its own checks said
    # (a TAP "Bail out!": the driver counts the test as an ERROR)
    if t_tool_reports; then
        echo "Bail out! $T_NAME: sanitizer or valgrind reports (above)"
        T_FAILED=$((T_FAILED + 1))
    fi
    if [ "${T_KEEP:-0}" = 1 ] || [ "$T_FAILED" -gt 0 ]; then
        echo "# scratch kept in $T_DIR" >&2
    else
        rm -rf "$T_DIR"
    fi
    [ "$T_FAILED" -eq 0 ] || exit 1
}
trap 't_cleanup' EXIT

# the test's result is its exit code too
t_done() { [ "$T_FAILED" -eq 0 ]; exit $?; }

# ---- peers -------------------------------------------------------------------

# start_testsink PORT DIR [options...]: rg-testsink writing each message to DIR
start_testsink() {
    local port=$1 dir=$2; shift 2
    mkdir -p "$dir"
    "$TESTSINK" -l "127.0.0.1:$port" -d "$dir" "$@" > "$dir.log" 2>&1 &
    track $!
    wait_port "$port" 10
}

# write_conf FILE: a regigate.conf with one route, from variables
#   LISTEN_PORT REINJECT_PORT [PROTOCOL] [PROCESS] [MAXSIZE] [EXTRA_GLOBAL] [EXTRA_ROUTE]
write_conf() {
    local f=$1
    mkdir -p "$T_DIR/spool"
    if [ "$(id -u)" = 0 ]; then chown nobody "$T_DIR/spool"; fi
    chmod 700 "$T_DIR/spool"
    {
        echo "[global]"
        [ "$(id -u)" = 0 ] && echo "user = nobody"
        echo "spool_dir = $T_DIR/spool"
        echo "pid_file = $T_DIR/regigated.pid"
        echo "max_servers = ${MAX_SERVERS:-4}"
        echo "min_spare_servers = 1"
        echo "max_spare_servers = ${MAX_SPARE:-2}"
        echo "smtp_timeout = ${SMTP_TIMEOUT:-30}"
        echo "reinject_timeout = ${REINJECT_TIMEOUT:-10}"
        [ -n "${EXTRA_GLOBAL:-}" ] && printf '%s\n' "$EXTRA_GLOBAL"
        echo
        echo "[route test]"
        echo "listen = 127.0.0.1:$LISTEN_PORT"
        echo "protocol = ${PROTOCOL:-smtp}"
        echo "reinject = 127.0.0.1:$REINJECT_PORT"
        echo "process = ${PROCESS:-message}"
        [ -n "${MAXSIZE:-}" ] && echo "max_message_size = $MAXSIZE"
        [ -n "${EXTRA_ROUTE:-}" ] && printf '%s\n' "$EXTRA_ROUTE"
    } > "$f"
}

# start_regigated CONF: in the foreground mode (-f), log in $T_DIR/regigated.log
start_regigated() {
    local conf=$1
    "$REGIGATED" -f -c "$conf" >> "$T_DIR/regigated.log" 2>&1 &
    REGIGATED_PID=$!
    track "$REGIGATED_PID"
    wait_port "$LISTEN_PORT" 10
}

need() { # need CMD...: skip the whole test when a peer program is missing
    local c
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip_all "$c not installed"; done
}

# smtp_raw PORT FILE: send FILE's bytes at once (a pipelining client, or a
# hostile one) and print everything the server answers until it closes.
smtp_raw() {
    timeout "${RAW_TIMEOUT:-10}" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        cat "$2" >&3; cat <&3' _ "$1" "$2"
}

# crlf FILE: print FILE with LF line ends turned into CRLF
crlf() { sed 's/$/\r/' "$1"; }

# sink_files DIR: the .eml files a sink wrote, oldest first
sink_files() { ls -1tr "$1"/msg-*.eml 2>/dev/null; }
sink_count() { sink_files "$1" | wc -l; }

# sock_pids sport|dport PORT: the pids owning an established TCP socket
# whose local (sport) or remote (dport) port is PORT (ss -p; needs root for
# other users' sockets)
sock_pids() {
    ss -Htnp state established "( $1 = :$2 )" 2>/dev/null |
        grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}
# is_worker PID: PID is a worker of the regigated master REGIGATED_PID
is_worker() { [ "$(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ')" = "$REGIGATED_PID" ]; }

# wait_files DIR N [SECONDS]: until the sink holds N messages
wait_files() {
    local i
    for ((i = 0; i < ${3:-10} * 20 * T_SLOW; i++)); do
        [ "$(sink_count "$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# swaks_to PORT ARGS...: swaks against 127.0.0.1:PORT, bounded in time
swaks_to() {
    local port=$1; shift
    timeout 30 swaks --server "127.0.0.1:$port" --helo test.example --suppress-data "$@"
}

# spool_left DIR: what is in regigated's spool_dir apart from its per-route
# records (route-NAME.rules, route-NAME.provider; regigated(8), FILES):
# spooled messages that were left behind. Empty when all is well.
spool_left() { ls -A "$1" 2>/dev/null | grep -Ev '^route-.+\.(rules|provider)$'; }

# log_has REGEX: regigated's log contains a matching line
log_has() { grep -Eq -- "$1" "$T_DIR/regigated.log"; }
# wait_log PATTERN [SECONDS]: until regigated's log has a line matching
# PATTERN (SECONDS, default 5, times T_SLOW: a reload under valgrind takes
# seconds)
wait_log() {
    local i
    for ((i = 0; i < ${2:-5} * 20 * T_SLOW; i++)); do
        log_has "$1" && return 0
        sleep 0.05
    done
    return 1
}
