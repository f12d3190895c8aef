#!/bin/bash
# contrib/quickstart.sh - install what is needed, build, and run regigated on
# a sample loopback route with a capture sink; send one message through it.
#
#   ./contrib/quickstart.sh          set up and start the demo (as root)
#   ./contrib/quickstart.sh stop     stop the demo's processes
#
# The demo lives in $DEMO_DIR (default /var/tmp/regigate-demo):
#   127.0.0.1:$DEMO_PORT       regigated, route "demo" (what Postfix's
#                              content_filter would send to)
#   127.0.0.1:$DEMO_PORT+1     Postfix's smtp-sink, standing in for the
#                              reinjection smtpd; it writes every message it
#                              receives into $DEMO_DIR/mail/
set -eu
cd "$(dirname "$0")/.."
top=$PWD
DEMO_DIR=${DEMO_DIR:-/var/tmp/regigate-demo}
DEMO_PORT=${DEMO_PORT:-10025}
SINK_PORT=$((DEMO_PORT + 1))
PATH=$PATH:/usr/sbin

stop_demo() {
    local f pid
    for f in "$DEMO_DIR"/regigated.pid "$DEMO_DIR"/sink.pid; do
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$f"
    done
}

if [ "${1:-}" = stop ]; then
    stop_demo
    echo "demo stopped"
    exit 0
fi

echo "==> installing packages (contrib/deps.sh)"
sh contrib/deps.sh
if [ ! -x _build/src/regigated/regigated ]; then
    echo "==> building (in _build/)"
    { autoreconf -fi && mkdir -p _build && cd _build && ../configure && make -j"$(nproc)"; } \
        > build.log 2>&1 || { tail -30 build.log; echo "build failed, see build.log" >&2; exit 1; }
fi

stop_demo
for p in "$DEMO_PORT" "$SINK_PORT"; do
    if ss -Hltn "sport = :$p" | grep -q .; then
        echo "port $p is in use: set DEMO_PORT to another port" >&2
        exit 1
    fi
done
mkdir -p "$DEMO_DIR/spool" "$DEMO_DIR/mail"
user=
if [ "$(id -u)" = 0 ]; then
    user=nobody
    chown nobody "$DEMO_DIR/spool" "$DEMO_DIR/mail"
fi
chmod 700 "$DEMO_DIR/spool"
cat > "$DEMO_DIR/regigate.conf" <<EOC
# regigate Quick start: one route on loopback (see regigate.conf(5))
[global]
${user:+user = $user}
spool_dir = $DEMO_DIR/spool
pid_file = $DEMO_DIR/regigated.pid
max_servers = 4

[route demo]
listen = 127.0.0.1:$DEMO_PORT
protocol = smtp
reinject = 127.0.0.1:$SINK_PORT
EOC

echo "==> starting the capture sink on 127.0.0.1:$SINK_PORT"
setsid smtp-sink ${user:+-u $user} -d "$DEMO_DIR/mail/%Y%m%d-%H%M%S." \
    "127.0.0.1:$SINK_PORT" 64 > "$DEMO_DIR/sink.log" 2>&1 < /dev/null &
echo $! > "$DEMO_DIR/sink.pid"
echo "==> starting regigated on 127.0.0.1:$DEMO_PORT"
setsid "$top/_build/src/regigated/regigated" -f -c "$DEMO_DIR/regigate.conf" \
    >> "$DEMO_DIR/regigated.log" 2>&1 < /dev/null &
for _ in $(seq 1 50); do ss -Hltn "sport = :$DEMO_PORT" | grep -q . && break; sleep 0.1; done

echo "==> sending a message with swaks"
before=$(ls "$DEMO_DIR/mail" | wc -l)
swaks --server "127.0.0.1:$DEMO_PORT" --from alice@example.com --to bob@example.org \
    --header "Subject: Hello from the regigate Quick start" \
    --body "This message went through regigated and was reinjected unchanged." \
    | grep -E '^(<-|\*\*|<\*\*)  ?[0-9]{3} ' | tail -3
for _ in $(seq 1 50); do [ "$(ls "$DEMO_DIR/mail" | wc -l)" -gt "$before" ] && break; sleep 0.1; done
last=$(ls -t "$DEMO_DIR/mail" | head -1)
echo
echo "==> regigated logged:"
grep 'route=demo' "$DEMO_DIR/regigated.log" | tail -1
echo
echo "==> the sink received $DEMO_DIR/mail/$last:"
sed 's/^/    /' "$DEMO_DIR/mail/$last"
cat <<EOM

regigated is running (pid $(cat "$DEMO_DIR/regigated.pid")), log: $DEMO_DIR/regigated.log
Send more:   swaks --server 127.0.0.1:$DEMO_PORT --from you@example.com --to someone@example.org
Messages:    $DEMO_DIR/mail/   (smtp-sink adds X-Client-*/X-Helo/X-Mail/X-Rcpt lines on top)
Stop:        ./contrib/quickstart.sh stop
EOM
