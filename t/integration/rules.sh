#!/bin/bash
# The rule engine through the daemon: forward/reject/tempfail/discard/
# encrypt decisions seen in the SMTP reply and at the sink, tags applied
# exactly, per-recipient split with SMTP and LMTP input, and a reload with
# a broken rule set keeping the old rules.
. "$(dirname "$0")/lib.sh"
need swaks
plan 20

LISTEN_PORT=$(free_port); REINJECT_PORT=$(free_port)
mkdir -p "$T_DIR/lists"
printf 'spammer@example.net\r\nother@example.net\n\n' > "$T_DIR/lists/blocked"
cat > "$T_DIR/rules.json" <<'EOR'
{
  "rules": [
    { "name": "block", "conditions": [ { "field": "sender", "op": "in-list", "value": "blocked" } ],
      "action": "reject", "reply": "550 5.7.1 sending not permitted" },
    { "name": "later", "conditions": [ { "field": "header:Subject", "op": "contains", "value": "[later]" } ],
      "action": "tempfail" },
    { "name": "drop", "conditions": [ { "field": "recipient", "op": "equals", "value": "blackhole@example.org" } ],
      "action": "discard" },
    { "name": "refuse-rcpt", "conditions": [ { "field": "recipient", "op": "equals", "value": "refused@example.org" } ],
      "action": "reject" },
    { "name": "secure", "conditions": [ { "field": "header:Subject", "op": "regex", "value": "(?i)\\[secure\\]" } ],
      "action": "encrypt" },
    { "name": "tag", "conditions": [ { "field": "header:Subject", "op": "contains", "value": "tagme" } ],
      "action": "forward", "continue": true,
      "tags": [ { "set-header": ["X-Regigate", "tagged"] }, { "remove-header": "X-Remove-Me" } ] }
  ],
  "default": { "action": "forward" }
}
EOR
# a rule set that can encrypt needs a provider: refused at start without
EXTRA_ROUTE="rules = $T_DIR/rules.json
lists_dir = $T_DIR/lists" write_conf "$T_DIR/rg.conf"
timeout 10 "$REGIGATED" -f -c "$T_DIR/rg.conf" > "$T_DIR/noprov.log" 2>&1
[ $? -ne 0 ] && grep -q "route test: rule set $T_DIR/rules.json uses encrypt or decrypt, but the route has no provider" "$T_DIR/noprov.log"
ok $? "encrypt rules on a route without a provider: refused at start" || diag "$(cat "$T_DIR/noprov.log")"
# a provider whose CA file is missing: the route cannot encrypt
EXTRA_ROUTE="rules = $T_DIR/rules.json
lists_dir = $T_DIR/lists
provider = https://127.0.0.1:1
provider_ca = $T_DIR/no-such-ca.pem" write_conf "$T_DIR/rg.conf"
start_testsink "$REINJECT_PORT" "$T_DIR/out"
start_regigated "$T_DIR/rg.conf"; ok $? "regigated with a rule set"

send() {   # send OUT-FILE swaks-args...
    local out=$1; shift
    swaks_to "$LISTEN_PORT" "$@" > "$T_DIR/$out" 2>&1
}

send r1.out --from spammer@example.net --to a@example.org --body x
grep -q '^<\*\* 550 5.7.1 sending not permitted' "$T_DIR/r1.out"; ok $? "reject: the rule's reply upstream"
log_has 'action=reject rule=block status=rejected'; ok $? "reject: logged with the rule's name"
send r2.out --from a@example.com --to a@example.org --header "Subject: see you [later]" --body x
grep -q '^<\*\* 451 4.7.1' "$T_DIR/r2.out"; ok $? "tempfail: 451 4.7.1"
send r3.out --from a@example.com --to blackhole@example.org --body x
grep -q '^<-  250 2.0.0 Ok: discarded by policy (rule drop)' "$T_DIR/r3.out"; ok $? "discard: 250 upstream"
send r4.out --from a@example.com --to a@example.org --header "Subject: [SECURE] plans" --body x
grep -q '^<\*\* 451 4.7.0 Error: key provider not usable: .*no-such-ca.pem' "$T_DIR/r4.out"
ok $? "encrypt with an unusable provider: 451, never passed on in clear" || diag "$(grep '^<' "$T_DIR/r4.out")"
sleep 0.3
[ "$(sink_count "$T_DIR/out")" = 0 ]; ok $? "nothing of the above reached the next hop"

# tags: exact header changes, body untouched
printf 'From: a@example.com\r\nTo: b@example.org\r\nSubject: please tagme\r\nX-Remove-Me: 1\r\nX-Keep: 2\r\nX-Remove-Me: 3\r\n\r\nbody line\r\n.dot\r\n' > "$T_DIR/t.eml"
send r5.out --from a@example.com --to b@example.org --data "@$T_DIR/t.eml"
wait_files "$T_DIR/out" 1
f=$(sink_files "$T_DIR/out" | tail -1)
printf 'From: a@example.com\r\nTo: b@example.org\r\nSubject: please tagme\r\nX-Keep: 2\r\nX-Regigate: tagged\r\n\r\nbody line\r\n.dot\r\n\r\n' > "$T_DIR/t.expect"
cmp -s "$T_DIR/t.expect" "$f"; ok $? "tags: set-header added, both X-Remove-Me removed, the rest byte for byte"
log_has 'action=forward rule=tag status=sent'; ok $? "a continue rule with an action decides when nothing later matches"

# no rule matches: byte for byte
printf 'Subject: plain\r\nX-Remove-Me: stays\r\n\r\nhello\r\n' > "$T_DIR/p.eml"
send r6.out --from a@example.com --to b@example.org --data "@$T_DIR/p.eml"
wait_files "$T_DIR/out" 2
f=$(sink_files "$T_DIR/out" | tail -1)
{ cat "$T_DIR/p.eml"; printf '\r\n'; } | cmp -s - "$f"; ok $? "no rule matched: passed byte for byte"

# message mode: one decision for all recipients (the first matching rule)
rm -f "$T_DIR"/out/msg-*
send r7.out --from a@example.com --to ok@example.org,blackhole@example.org --body x
grep -q '^<-  250 2.0.0 Ok: discarded' "$T_DIR/r7.out" && sleep 0.3 && [ "$(sink_count "$T_DIR/out")" = 0 ]
ok $? "process = message: a recipient condition decides for the whole message"

# process = recipient, SMTP input: split, each recipient its own decision
t_stop_pid "$REGIGATED_PID"
PROCESS=recipient EXTRA_ROUTE="rules = $T_DIR/rules.json
lists_dir = $T_DIR/lists
provider = https://127.0.0.1:1
provider_ca = $T_DIR/no-such-ca.pem" write_conf "$T_DIR/rg.conf"
start_regigated "$T_DIR/rg.conf"; ok $? "restarted with process = recipient"
send r8.out --from a@example.com --to ok1@example.org,blackhole@example.org,ok2@example.org --body x
wait_files "$T_DIR/out" 2
grep -q '^<-  250 2.0.0 Ok: forwarded' "$T_DIR/r8.out" && [ "$(sink_count "$T_DIR/out")" = 2 ] \
  && ! grep -q blackhole "$T_DIR"/out/*.env
ok $? "split: two copies forwarded, the blackhole recipient discarded"
send r9.out --from a@example.com --to ok3@example.org,refused@example.org --body x
grep -q '^<\*\* 550 5.7.1 Message rejected by policy' "$T_DIR/r9.out"
ok $? "split with SMTP input, mixed 2xx/5xx: the 5xx upstream (documented)"

# process = recipient, LMTP input: one reply per recipient
t_stop_pid "$REGIGATED_PID"
PROTOCOL=lmtp PROCESS=recipient EXTRA_ROUTE="rules = $T_DIR/rules.json
lists_dir = $T_DIR/lists
provider = https://127.0.0.1:1
provider_ca = $T_DIR/no-such-ca.pem" write_conf "$T_DIR/rg.conf"
start_regigated "$T_DIR/rg.conf"; ok $? "restarted with LMTP input"
printf 'LHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<l1@example.org>\r\nRCPT TO:<refused@example.org>\r\nRCPT TO:<blackhole@example.org>\r\nDATA\r\nSubject: s\r\n\r\nb\r\n.\r\nQUIT\r\n' > "$T_DIR/l.in"
smtp_raw "$LISTEN_PORT" "$T_DIR/l.in" | tr -d '\r' | sed '1,/^354/d' > "$T_DIR/l.out"
[ "$(sed -n 1p "$T_DIR/l.out" | cut -c1-24)" = "250 2.0.0 Ok: forwarded " ] \
  && [ "$(sed -n 2p "$T_DIR/l.out")" = "550 5.7.1 Message rejected by policy" ] \
  && [ "$(sed -n 3p "$T_DIR/l.out" | cut -c1-24)" = "250 2.0.0 Ok: discarded " ]
ok $? "LMTP: forwarded, rejected, discarded — one reply each"

# reload with a broken rule set: refused, the old rules stay
cp "$T_DIR/rules.json" "$T_DIR/rules.good"
sed -i 's/"action": "tempfail"/"action": "tempfial"/' "$T_DIR/rules.json"
kill -HUP "$REGIGATED_PID"
wait_log 'reload refused: rule set errors' && log_has "rules.json:[0-9]+:[0-9]+: .*tempfial"
ok $? "broken rule set on SIGHUP: refused with FILE:LINE:COL"
send r10.out --protocol LMTP --from spammer@example.net --to a@example.org --body x
grep -q '^<\*\* 550 5.7.1 sending not permitted' "$T_DIR/r10.out"; ok $? "the old rules still apply"
# and a fixed one is taken
sed 's/sending not permitted/blocked sender/' "$T_DIR/rules.good" > "$T_DIR/rules.json"
kill -HUP "$REGIGATED_PID"
wait_log 'configuration reloaded'; sleep 1   # and the old workers have left
send r11.out --protocol LMTP --from spammer@example.net --to a@example.org --body x
grep -q '^<\*\* 550 5.7.1 blocked sender' "$T_DIR/r11.out"; ok $? "a valid rule set is taken on SIGHUP"
t_done
