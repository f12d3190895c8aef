#!/bin/bash
# The master: config errors, pid file, SIGHUP reload (good and bad),
# SIGTERM with a message in flight, dead workers replaced, max_requests,
# the spool file of a large message (0600, unlinked, gone afterwards).
. "$(dirname "$0")/lib.sh"
need swaks
plan 17

LISTEN_PORT=$(free_port); REINJECT_PORT=$(free_port)

# bad configurations are refused at start with FILE:LINE: message
printf '[global]\nspool_dir = %s\nmax_servers = 0\n[route a]\nlisten = 127.0.0.1:%s\nreinject = 127.0.0.1:%s\n' \
    "$T_DIR/spool" "$LISTEN_PORT" "$REINJECT_PORT" > "$T_DIR/bad.conf"
out=$("$REGIGATED" -f -c "$T_DIR/bad.conf" 2>&1); rc=$?
[ $rc = 1 ] && [[ $out == *"$T_DIR/bad.conf:3: max_servers must be between"* ]]
ok $? "invalid value refused at start with FILE:LINE (rc=$rc: $out)"
printf '[global]\nspool_dir = %s\n[route a]\nlisten = 192.0.2.1:%s\nreinject = 127.0.0.1:%s\n' \
    "$T_DIR/spool" "$LISTEN_PORT" "$REINJECT_PORT" > "$T_DIR/remote.conf"
out=$("$REGIGATED" -t -c "$T_DIR/remote.conf" 2>&1); rc=$?
[ $rc = 1 ] && [[ $out == *"remote.conf:4:"*loopback* ]]; ok $? "non-loopback listen refused unless allowed ($out)"
write_conf "$T_DIR/rg.conf"
"$REGIGATED" -t -c "$T_DIR/rg.conf" | grep -q 'configuration ok'; ok $? "-t accepts a good file"

start_testsink "$REINJECT_PORT" "$T_DIR/out"
EXTRA_GLOBAL="spool_memory_limit = 65536
max_requests = 3
shutdown_timeout = 20" write_conf "$T_DIR/rg.conf"
start_regigated "$T_DIR/rg.conf"; ok $? "started"
[ "$(cat "$T_DIR/regigated.pid")" = "$REGIGATED_PID" ]; ok $? "pid file holds the master's pid"
out=$("$REGIGATED" -f -c "$T_DIR/rg.conf" 2>&1); [[ $out == *"already running as pid $REGIGATED_PID"* ]]
ok $? "a second instance refuses to start"

send() { swaks_to "$LISTEN_PORT" --from a@example.com --to "$1" --body "${2:-x}" 2>&1 | grep -q '^<-  250 2.0.0 Ok: forwarded'; }

# a worker killed with SIGKILL is replaced; mail keeps flowing
w=$(pgrep -P "$REGIGATED_PID" | head -1)
kill -9 "$w"
sleep 1.5
send k@example.org && ! kill -0 "$w" 2>/dev/null && [ "$(pgrep -P "$REGIGATED_PID" | wc -l)" -ge 1 ]
ok $? "killed worker replaced, next message relayed"
log_has "worker $w killed by signal 9"; ok $? "the dead worker is logged"

# max_requests = 3: workers are recycled
before=$(pgrep -P "$REGIGATED_PID" | sort | tr '\n' ' ')
for i in 1 2 3 4 5 6 7; do send "r$i@example.org"; done
after=$(pgrep -P "$REGIGATED_PID" | sort | tr '\n' ' ')
[ "$before" != "$after" ]; ok $? "workers recycled after max_requests ($before -> $after)"

# a large message goes to a spool file: 0600, unlinked at once, gone after
t_stop_pid "${T_PIDS[0]}"     # the fast sink
start_testsink "$REINJECT_PORT" "$T_DIR/slow" -s 3
head -c 300000 /dev/urandom | base64 -w 76 > "$T_DIR/large.txt"
( swaks_to "$LISTEN_PORT" --from a@example.com --to big@example.org --body @"$T_DIR/large.txt" > "$T_DIR/large.out" 2>&1 ) &
track $!
spooled=
for i in $(seq 1 60); do
    for w in $(pgrep -P "$REGIGATED_PID"); do
        l=$(ls -l "/proc/$w/fd" 2>/dev/null | grep "$T_DIR/spool/rg\..* (deleted)")
        [ -n "$l" ] && spooled=$l && break 2
    done
    sleep 0.05
done
[ -n "$spooled" ] && [ -z "$(spool_left "$T_DIR/spool")" ]; ok $? "large message spooled to an unlinked file"
fdmode=$(for w in $(pgrep -P "$REGIGATED_PID"); do for fd in /proc/$w/fd/*; do
    [[ $(readlink "$fd") == "$T_DIR/spool/rg."* ]] && stat -L -c %a "$fd"; done; done 2>/dev/null | head -1)
[ "$fdmode" = 600 ]; ok $? "spool file mode is 0600 ($fdmode)"

# SIGTERM while that message is in flight: it completes, then the daemon exits
sleep 0.5
kill -TERM "$REGIGATED_PID"
for i in $(seq 1 100); do kill -0 "$REGIGATED_PID" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$REGIGATED_PID" 2>/dev/null; ok $? "SIGTERM: the daemon exits"
wait_files "$T_DIR/slow" 1 5
grep -q '^<-  250 2.0.0 Ok: forwarded' "$T_DIR/large.out" && [ "$(sink_count "$T_DIR/slow")" = 1 ]
ok $? "the in-flight message was finished (250) before exit"
[ -z "$(spool_left "$T_DIR/spool")" ]; ok $? "spool directory empty"

# SIGHUP: a broken file is refused and the old configuration keeps running;
# a good file adds a route
t_stop_pid "${T_PIDS[-2]}"    # the slow sink
start_testsink "$REINJECT_PORT" "$T_DIR/out2"
rm -f "$T_DIR/regigated.pid"
start_regigated "$T_DIR/rg.conf"
cp "$T_DIR/rg.conf" "$T_DIR/rg.conf.good"
printf '\n[route extra]\nlisten = 127.0.0.1:%s\nreinject = nowhere\n' "$(free_port)" >> "$T_DIR/rg.conf"
kill -HUP "$REGIGATED_PID"
wait_log "reload refused: $T_DIR/rg.conf:[0-9]+: .*keeping the current configuration" && send h1@example.org
ok $? "broken reload refused with FILE:LINE, old configuration still relays"
NEW_PORT=$(free_port)
cp "$T_DIR/rg.conf.good" "$T_DIR/rg.conf"
printf '\n[route extra]\nlisten = 127.0.0.1:%s\nreinject = 127.0.0.1:%s\n' "$NEW_PORT" "$REINJECT_PORT" >> "$T_DIR/rg.conf"
kill -HUP "$REGIGATED_PID"
wait_port "$NEW_PORT" 5 && log_has 'configuration reloaded from .*: 2 route\(s\)'
ok $? "good reload: the new route listens"
swaks_to "$NEW_PORT" --from a@example.com --to via-extra@example.org --body x 2>&1 | grep -q '^<-  250 2.0.0 Ok: forwarded' \
  && send h2@example.org
ok $? "both routes relay after the reload"
t_done
