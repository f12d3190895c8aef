#!/bin/bash
# contrib/quickstart.sh - install what is needed, build, and run the whole
# gateway on loopback: a local key provider (SQLite) with two demo accounts,
# an outbound route that encrypts mail whose Subject contains [secure], an
# inbound route that decrypts; one message is sent through each.
#
#   ./contrib/quickstart.sh          set up and start the demo (as root)
#   ./contrib/quickstart.sh stop     stop the demo's processes
#
# The demo lives in $DEMO_DIR (default /var/tmp/regigate-demo), on ports
# $DEMO_PORT (default 10025) and up, all on 127.0.0.1:
#   +0  regigated, route "outbound" (encrypt)   -> +1 capture sink, mail/outbound/
#   +2  regigated, route "inbound"  (decrypt)   -> +3 capture sink, mail/inbound/
#   +4  regigate-provider (HTTPS, client certificates)
# The capture sinks stand in for Postfix's reinjection smtpd: each message
# they receive is written to a .eml file (exact bytes) and a .env file
# (envelope).
set -eu
cd "$(dirname "$0")/.."
top=$PWD
B=$top/_build
DEMO_DIR=${DEMO_DIR:-/var/tmp/regigate-demo}
DEMO_PORT=${DEMO_PORT:-10025}
OUT_PORT=$DEMO_PORT; OUT_SINK=$((DEMO_PORT + 1))
IN_PORT=$((DEMO_PORT + 2)); IN_SINK=$((DEMO_PORT + 3))
PROVIDER_PORT=$((DEMO_PORT + 4))
PATH=$PATH:/usr/sbin

stop_demo() {
    local f pid
    for f in "$DEMO_DIR"/regigated.pid "$DEMO_DIR"/provider.pid "$DEMO_DIR"/sink-out.pid \
             "$DEMO_DIR"/sink-in.pid; do
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
echo "==> building (in _build/, log in build.log)"
{ [ -f "$B/Makefile" ] || { autoreconf -fi && mkdir -p "$B" && cd "$B" && ../configure; } \
  && make -C "$B" -j"$(nproc)" all t/helpers/rg-testsink; } > build.log 2>&1 \
    || { tail -30 build.log; echo "build failed, see build.log" >&2; exit 1; }

stop_demo
for p in "$OUT_PORT" "$OUT_SINK" "$IN_PORT" "$IN_SINK" "$PROVIDER_PORT"; do
    if ss -Hltn "sport = :$p" | grep -q .; then
        echo "port $p is in use: set DEMO_PORT to another base port" >&2
        exit 1
    fi
done
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/spool" "$DEMO_DIR/mail/outbound" "$DEMO_DIR/mail/inbound" "$DEMO_DIR/routes"
chmod 755 "$DEMO_DIR"      # the daemons' user must reach its files
user=
if [ "$(id -u)" = 0 ]; then user=nobody; fi

echo "==> the key provider: CA, database, a gateway, accounts alice@example.com and bob@example.org"
cat > "$DEMO_DIR/provider.conf" <<EOC
[provider]
listen = 127.0.0.1:$PROVIDER_PORT
data_dir = $DEMO_DIR/provider
threads = 2
EOC
rgp() { "$B/src/regigate-provider/regigate-provider" -c "$DEMO_DIR/provider.conf" "$@"; }
rgp init > "$DEMO_DIR/provider-init.log" 2>&1
setsid "$B/src/regigate-provider/regigate-provider" -c "$DEMO_DIR/provider.conf" serve \
    >> "$DEMO_DIR/provider.log" 2>&1 < /dev/null &
echo $! > "$DEMO_DIR/provider.pid"
gw=$(rgp gateway add --ip 127.0.0.1 --description "regigate Quick start")
rgp account add alice@example.com bob@example.org > /dev/null

cat > "$DEMO_DIR/outbound.json" <<'EOR'
{
  "rules": [
    { "name": "secure-subject",
      "conditions": [ { "field": "header:Subject", "op": "regex", "value": "(?i)\\[secure\\]" } ],
      "action": "encrypt",
      "tags": [ { "subject-remove": "(?i)\\[secure\\]\\s*" } ] }
  ],
  "default": { "action": "forward" }
}
EOR
cat > "$DEMO_DIR/inbound.json" <<'EOR'
{
  "rules": [
    { "name": "decrypt-inbound",
      "conditions": [ { "field": "encrypted", "op": "equals", "value": true } ],
      "action": "decrypt" }
  ],
  "default": { "action": "forward" }
}
EOR
cat > "$DEMO_DIR/regigate.conf" <<EOC
# regigate Quick start: two routes on loopback (see regigate.conf(5))
[global]
${user:+user = $user}
spool_dir = $DEMO_DIR/spool
pid_file = $DEMO_DIR/regigated.pid
max_servers = 4

[route outbound]
listen = 127.0.0.1:$OUT_PORT
reinject = 127.0.0.1:$OUT_SINK
rules = $DEMO_DIR/outbound.json
provider = https://localhost:$PROVIDER_PORT
provider_ca = $DEMO_DIR/routes/provider-ca.crt
cert_dir = $DEMO_DIR/routes/gateway

[route inbound]
listen = 127.0.0.1:$IN_PORT
reinject = 127.0.0.1:$IN_SINK
rules = $DEMO_DIR/inbound.json
provider = https://localhost:$PROVIDER_PORT
provider_ca = $DEMO_DIR/routes/provider-ca.crt
cert_dir = $DEMO_DIR/routes/gateway
max_message_size = 70m
EOC
for _ in $(seq 1 50); do ss -Hltn "sport = :$PROVIDER_PORT" | grep -q . && break; sleep 0.1; done

echo "==> the gateway's certificate: regigatectl route cert-request, provider signs, cert-import"
ctl() { "$B/src/regigatectl/regigatectl" -c "$DEMO_DIR/regigate.conf" "$@"; }
cp "$DEMO_DIR/provider/ca.crt" "$DEMO_DIR/routes/provider-ca.crt"
ctl route cert-request outbound 2> /dev/null > "$DEMO_DIR/routes/gateway.csr"
rgp gateway sign "$gw" < "$DEMO_DIR/routes/gateway.csr" > "$DEMO_DIR/routes/gateway.crt" 2> /dev/null
ctl route cert-import outbound < "$DEMO_DIR/routes/gateway.crt" | sed 's/^/    /'
if [ -n "$user" ]; then
    chown -R "$user" "$DEMO_DIR/spool" "$DEMO_DIR/routes" "$DEMO_DIR/mail"
fi
chmod 700 "$DEMO_DIR/spool"

echo "==> capture sinks on 127.0.0.1:$OUT_SINK and :$IN_SINK, regigated on :$OUT_PORT and :$IN_PORT"
setsid "$B/t/helpers/rg-testsink" -l "127.0.0.1:$OUT_SINK" -d "$DEMO_DIR/mail/outbound" \
    > "$DEMO_DIR/sink-out.log" 2>&1 < /dev/null &
echo $! > "$DEMO_DIR/sink-out.pid"
setsid "$B/t/helpers/rg-testsink" -l "127.0.0.1:$IN_SINK" -d "$DEMO_DIR/mail/inbound" \
    > "$DEMO_DIR/sink-in.log" 2>&1 < /dev/null &
echo $! > "$DEMO_DIR/sink-in.pid"
setsid "$B/src/regigated/regigated" -f -c "$DEMO_DIR/regigate.conf" \
    >> "$DEMO_DIR/regigated.log" 2>&1 < /dev/null &
for p in "$OUT_PORT" "$IN_PORT" "$OUT_SINK" "$IN_SINK"; do
    for _ in $(seq 1 100); do ss -Hltn "sport = :$p" | grep -q . && break; sleep 0.1; done
    if ! ss -Hltn "sport = :$p" | grep -q .; then
        echo "nothing listens on 127.0.0.1:$p; regigated said:" >&2
        tail -5 "$DEMO_DIR/regigated.log" >&2
        exit 1
    fi
done

newest() { ls -1t "$1"/msg-*.eml 2>/dev/null | head -1; }
wait_new() {   # wait_new DIR COUNT-BEFORE
    for _ in $(seq 1 100); do
        [ "$(ls "$1" | grep -c '\.eml$')" -gt "$2" ] && return 0; sleep 0.1
    done
    echo "no message arrived in $1; see $DEMO_DIR/regigated.log" >&2
    return 1
}
smtp_replies() { grep -E '^(<-|<\*\*) +[0-9]{3} ' | tail -2 | sed 's/^/    /'; }

cat > "$DEMO_DIR/original.eml" <<'EOM'
From: Alice <alice@example.com>
To: Bob <bob@example.org>
Subject: [secure] Quarterly figures
Date: Sun, 22 Nov 2026 10:00:00 +0000
Message-ID: <quickstart-1@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Hello Bob,

the figures are confidential: revenue 4.2 M€, costs 3.1 M€.

Alice
EOM
sed -i 's/$/\r/' "$DEMO_DIR/original.eml"

echo
echo "==> 1. alice@example.com -> bob@example.org through the outbound route (Subject has [secure])"
n=$(ls "$DEMO_DIR/mail/outbound" | grep -c '\.eml$' || true)
swaks --server "127.0.0.1:$OUT_PORT" --from alice@example.com --to bob@example.org \
    --data "@$DEMO_DIR/original.eml" | smtp_replies
wait_new "$DEMO_DIR/mail/outbound" "$n"
enc=$(newest "$DEMO_DIR/mail/outbound")
echo "    regigated: $(grep 'route=outbound' "$DEMO_DIR/regigated.log" | tail -1 | sed 's/.*: route=/route=/')"
echo "    the encrypted copy, as the Internet sees it ($enc):"
sed -n '1,/^\r\?$/p' "$enc" | sed 's/^/      | /'
sed -n '/^\r\?$/,$p' "$enc" | sed -n '2,4p' | sed 's/^/      | /'
echo "      | ... ($(wc -l < "$enc") lines of base64)"

echo
echo "==> 2. the encrypted copy arrives at bob's gateway: through the inbound route"
n=$(ls "$DEMO_DIR/mail/inbound" | grep -c '\.eml$' || true)
swaks --server "127.0.0.1:$IN_PORT" --from alice@example.com --to bob@example.org \
    --data "@$enc" | smtp_replies
wait_new "$DEMO_DIR/mail/inbound" "$n"
dec=$(newest "$DEMO_DIR/mail/inbound")
echo "    regigated: $(grep 'route=inbound' "$DEMO_DIR/regigated.log" | tail -1 | sed 's/.*: route=/route=/')"
echo "    the decrypted copy bob receives ($dec):"
sed 's/^/      | /' "$dec"
# what the outbound route encrypted: the original, [secure] removed by the
# rule's tag, plus the CRLF swaks adds before the final dot
if sed 's/^Subject: \[secure\] /Subject: /' "$DEMO_DIR/original.eml" | { cat; printf '\r\n'; } \
    | cmp -s - "$dec"; then
    echo "    identical to what alice sent (apart from the [secure] the rule removed): yes"
else
    echo "    WARNING: the decrypted copy differs from what was sent" >&2
fi

cat <<EOM

The gateway is running: regigated (pid $(cat "$DEMO_DIR/regigated.pid" 2>/dev/null)), provider (pid $(cat "$DEMO_DIR/provider.pid")).
Logs:        $DEMO_DIR/regigated.log  $DEMO_DIR/provider.log
Messages:    $DEMO_DIR/mail/outbound/ (encrypted)  $DEMO_DIR/mail/inbound/ (decrypted)
Send more:   swaks --server 127.0.0.1:$OUT_PORT --from alice@example.com --to bob@example.org --header "Subject: [secure] hi"
             (a sender without an account is refused with 550; add one with
              $B/src/regigate-provider/regigate-provider -c $DEMO_DIR/provider.conf account add ADDRESS)
Decrypt:     swaks --server 127.0.0.1:$IN_PORT --from alice@example.com --to bob@example.org --data @FILE.eml
Who read it: $B/src/regigate-provider/regigate-provider -c $DEMO_DIR/provider.conf transaction show TXID
Stop:        ./contrib/quickstart.sh stop
EOM
