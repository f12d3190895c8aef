# shellcheck shell=bash
# bench/lib-common.sh - shell functions shared by bench/passthrough, bench/crypto
# and bench/compare. Source it; it defines functions only (no side effects).
#
# The caller may set BENCH_LOG to the name of its log function (default: log),
# used by quiet_wait, and PROVIDER / CTL (the programs) for the provider helpers.

# ---- the shared harness ------------------------------------------------------------
# bench_peers TOP: the harness's directory (absolute) on stdout: $BENCH_PEERS if set,
# else TOP/../shared/bench-peers, else (in a linked git worktree such as
# /work/wt/NAME) shared/bench-peers beside the main checkout
bench_peers() {
  local d=${BENCH_PEERS:-$1/../shared/bench-peers} common
  if [ -z "${BENCH_PEERS:-}" ] && ! [ -d "$d" ]; then
    common=$(git -C "$1" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)
    [ -n "$common" ] && [ -d "$(dirname "$common")/../shared/bench-peers" ] && d=$(dirname "$common")/../shared/bench-peers
  fi
  [ -d "$d" ] && d=$(cd "$d" && pwd)
  echo "$d"
}

# ---- ports --------------------------------------------------------------------
port_busy() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
# pick_port VAR DEFAULT: export VAR; a value set explicitly must be free; a default
# that is busy is replaced by DEFAULT+100, +200, ... (up to +900). Returns 1 if
# no port is free (the caller dies).
pick_port() {
  local v=$1 p=$2 i
  if [ -n "${!v:-}" ]; then port_busy "${!v}" && return 1; export "$v=${!v}"; return 0; fi
  for i in 1 2 3 4 5 6 7 8 9 10; do
    port_busy "$p" || { export "$v=$p"; return 0; }
    p=$(($2 + 100 * i))
  done
  return 1
}

# ---- CPU ----------------------------------------------------------------------
# cpu_busy_pct SECONDS: busy % of all CPUs (user+nice+system+irq+softirq; steal
# not counted) over that many seconds
cpu_busy_pct() {
  local a1 a2 a3 a4 a5 a6 a7 a8 b1 b2 b3 b4 b5 b6 b7 b8
  read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ < /proc/stat
  sleep "$1"
  read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ < /proc/stat
  local busy=$(((b1 + b2 + b3 + b6 + b7) - (a1 + a2 + a3 + a6 + a7)))
  local all=$(((b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8) - (a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8)))
  ((all > 0)) && echo $((100 * busy / all)) || echo 0
}
# quiet_wait: wait (at most QUIET_MAX_WAIT s) until the host is less than
# QUIET_PCT % busy over a 3 s window (the benchmark itself is idle then)
quiet_wait() {
  local t0=$SECONDS b lg=${BENCH_LOG:-log}
  while :; do
    b=$(cpu_busy_pct 3)
    ((b < QUIET_PCT)) && { "$lg" "host quiet (${b}% busy)"; return 0; }
    ((SECONDS - t0 >= QUIET_MAX_WAIT)) && { "$lg" "WARNING: host still ${b}% busy by others after ${QUIET_MAX_WAIT}s; going on"; return 0; }
    "$lg" "host ${b}% busy by others; waiting"
  done
}
# cpu_stat: "busy steal all" clock ticks of the whole VM so far (/proc/stat, first line;
# busy = user+nice+system+irq+softirq)
cpu_stat() {
  local u n s i w q sq st
  read -r _ u n s i w q sq st _ < /proc/stat
  echo "$((u + n + s + q + sq)) $st $((u + n + s + i + w + q + sq + st))"
}
# proc_ticks PID...: utime+stime (clock ticks) of the pids that exist
proc_ticks() {
  local p t=0
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
# tree_ticks PID: CPU ticks of a pool: the master (incl. its reaped children,
# cutime+cstime) plus its live children. Between two calls, a child that exits
# moves from the second term to the first, so the difference stays exact.
tree_ticks() {
  local m=$1 t
  [ -n "$m" ] && [ -r "/proc/$m/stat" ] || { echo 0; return; }
  t=$(awk '{sub(/.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$m/stat" 2>/dev/null || echo 0)
  # shellcheck disable=SC2046
  echo $((t + $(proc_ticks $(ps -o pid= --ppid "$m" 2>/dev/null))))
}
# pid_of FILE: the number in a pid file (empty if none)
pid_of() { [ -s "$1" ] && tr -dc 0-9 < "$1"; return 0; }

# ---- processes ----------------------------------------------------------------
stop_pid() {  # stop_pid PID: TERM, then KILL after 5 s
  local p=$1 i
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill "$p" 2>/dev/null
  for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  return 0
}

# ---- the harness's Postfix instance -----------------------------------------------
# The harness (re)writes alternate_config_directories of /etc/postfix/main.cf with
# its own instance only: alt_save remembers the entries before (e.g. a test
# suite's instance), restore_alt puts them back.
alt_save() { alt_before=$(postconf -h alternate_config_directories 2>/dev/null); }
restore_alt() {
  local now merged
  now=$(postconf -h alternate_config_directories 2>/dev/null)
  # shellcheck disable=SC2086
  merged=$(printf '%s\n' $now ${alt_before:-} | tr -d ',' | awk 'NF && !seen[$0]++' | paste -sd, - | sed 's/,/, /g')
  [ -n "$merged" ] && [ "$merged" != "$now" ] && postconf -e "alternate_config_directories = $merged"
  return 0
}

# ---- a real regigate-provider on 127.0.0.1 ------------------------------------------
# provider_setup DIR PORT THREADS SYNC ACCOUNT...: init a provider in DIR (config
# DIR/p.conf, data DIR/pdata), serve it in the background, allow one gateway from
# 127.0.0.1 and add the accounts. Sets PROVIDER_PID and GW (the gateway id).
# Returns 1 with the reason on stderr.
provider_setup() {
  local d=$1 port=$2 threads=$3 sync=$4
  shift 4
  cat > "$d/p.conf" <<EOF
[provider]
listen = 127.0.0.1:$port
data_dir = $d/pdata
threads = $threads
synchronous = $sync
EOF
  "$PROVIDER" -c "$d/p.conf" init > "$d/init.out" 2>&1 || { echo "provider init: $(cat "$d/init.out")" >&2; return 1; }
  "$PROVIDER" -c "$d/p.conf" serve >> "$d/provider.log" 2>&1 &
  # shellcheck disable=SC2034  # PROVIDER_PID is for the caller
  PROVIDER_PID=$!
  wait_listen "$port" 10 || { echo "provider not listening: $(tail -3 "$d/provider.log")" >&2; return 1; }
  GW=$("$PROVIDER" -c "$d/p.conf" gateway add --ip 127.0.0.1 --description bench 2> "$d/gw.err") ||
    { echo "gateway add: $(cat "$d/gw.err")" >&2; return 1; }
  "$PROVIDER" -c "$d/p.conf" account add "$@" > "$d/acc.out" 2>&1 || { echo "account add: $(cat "$d/acc.out")" >&2; return 1; }
}
# gateway_enrol DIR CONF ROUTE CERTDIR: enrol ROUTE of the regigated configuration
# CONF with the provider of provider_setup DIR, as t/integration/crypto.sh does:
# regigatectl route cert-request, regigate-provider gateway sign, route cert-import.
# CERTDIR (the route's cert_dir) gets the provider's CA as ca.crt first.
gateway_enrol() {
  local d=$1 conf=$2 route=$3 certs=$4
  mkdir -p "$certs" && cp "$d/pdata/ca.crt" "$certs/ca.crt" || return 1
  "$CTL" -c "$conf" route cert-request "$route" > "$d/gw.csr" 2> "$d/ctl.err" &&
    "$PROVIDER" -c "$d/p.conf" gateway sign "$GW" < "$d/gw.csr" > "$d/gw.crt" 2>> "$d/ctl.err" &&
    "$CTL" -c "$conf" route cert-import "$route" < "$d/gw.crt" > "$d/imp.out" 2>> "$d/ctl.err" ||
    { echo "enrolment: $(cat "$d/ctl.err")" >&2; return 1; }
}
