#!/bin/bash
# t/integration/admin_rules_lists.sh - regigatectl rules show|import and
# lists add|show|import|remove against the real regigated, for a route made
# with "route add" in a routes_dir inside the scratch directory.
#
# Checks: a rule set naming a missing list is refused and the old one stays
# in use; lists are checked, replaced atomically and picked up by regigated
# (SIGHUP); a list the rules use cannot be removed; a broken rule set is
# refused with FILE:LINE:COL and the running daemon keeps the old rules.
. "$(dirname "$0")/lib.sh"
need swaks ss openssl
[ -x "$REGIGATED" ] || skip_all "regigated not built ($REGIGATED)"
CTL=${REGIGATECTL:-$top_builddir/src/regigatectl/regigatectl}
[ -x "$CTL" ] || skip_all "regigatectl not built ($CTL)"

plan 38

ETC=$T_DIR/etc
CONF=$ETC/regigate.conf
ROUTES=$ETC/routes
mkdir -p "$ETC" "$T_DIR/spool"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ETC/ca.key" \
    -out "$ETC/provider-ca.crt" -subj /CN=test-provider-ca -days 30 >/dev/null 2>&1
BASE=$(free_port); PUB=$(free_port)
{
    echo "[global]"
    if [ "$(id -u)" = 0 ]; then echo "user = nobody"; chown nobody "$T_DIR/spool"; fi
    echo "spool_dir = $T_DIR/spool"
    echo "pid_file = $T_DIR/regigated.pid"
    echo "routes_dir = $ROUTES"
    echo "route_port_base = $BASE"
    echo "max_servers = 2"
    echo "min_spare_servers = 1"
    echo "max_spare_servers = 1"
} > "$CONF"
chmod 700 "$T_DIR/spool"

ctl() { "$CTL" -c "$CONF" "$@"; }
ctl_fails() {   # ctl_fails STATUS PATTERN ARGS...: that exit status and PATTERN on stderr
    local want=$1 pat=$2 rc; shift 2
    ctl "$@" > "$T_DIR/out" 2> "$T_DIR/err" < "${CTL_STDIN:-/dev/null}"; rc=$?
    [ "$rc" = "$want" ] && grep -q -- "$pat" "$T_DIR/err" || { echo "# rc=$rc" >&2; cat "$T_DIR/err" >&2; return 1; }
}
send() { swaks_to "$BASE" "$@" > "$T_DIR/swaks.out" 2>&1; }
rejected() { grep -q '^<\*\* 550 5.7.1 sending not permitted' "$T_DIR/swaks.out"; }
accepted() { grep -q '^<-  250 2.0.0' "$T_DIR/swaks.out"; }

ctl route add r1 --listen "127.0.0.1:$PUB" --provider provider.test:8443 \
    --accept-from 127.0.0.1 --forward-to 127.0.0.1:25 > "$T_DIR/add.out" 2>&1
ok $? "route add r1"
start_testsink "$((BASE + 1))" "$T_DIR/sink"
ok $? "the next hop (rg-testsink) listens on the route's reinjection port $((BASE + 1))"
LISTEN_PORT=$BASE start_regigated "$CONF"
ok $? "regigated listens on the route's port $BASE"

[ "$(ctl rules show r1)" = "{}" ]
ok $? "rules show: a new route has the empty rule set"

cat > "$T_DIR/block.json" <<'EOR'
{
  "rules": [
    { "name": "block", "conditions": [ { "field": "sender", "op": "in-list", "value": "blocked" } ],
      "action": "reject", "reply": "550 5.7.1 sending not permitted" }
  ],
  "default": { "action": "forward" }
}
EOR
ctl_fails 1 "blocked" rules import r1 "$T_DIR/block.json"
ok $? "rules import refuses rules that name a missing list"
[ "$(ctl rules show r1)" = "{}" ]
ok $? "and the rules in use are unchanged"

printf 'spammer@example.net\n' > "$T_DIR/blocked.txt"
ctl lists add r1 blocked "$T_DIR/blocked.txt" > "$T_DIR/out" 2>&1 && grep -q "list blocked added, 1 entry" "$T_DIR/out"
ok $? "lists add r1 blocked"
[ "$(stat -c %a "$ROUTES/r1/lists/blocked")" = 640 ] && cmp -s "$T_DIR/blocked.txt" "$ROUTES/r1/lists/blocked"
ok $? "the list file holds the content, mode 0640"
ctl lists show r1 blocked | cmp -s - "$T_DIR/blocked.txt"
ok $? "lists show r1 blocked prints it"
ctl lists show r1 | grep -Pq '^blocked\t1 entries\tnot used$'
ok $? "lists show r1 lists it as not used"
CTL_STDIN=$T_DIR/blocked.txt ctl_fails 1 "has a list 'blocked' already" lists add r1 blocked
ok $? "lists add refuses an existing list"
ctl_fails 2 "invalid list name" lists add r1 'bad.name' "$T_DIR/blocked.txt"
ok $? "lists add refuses a bad list name"
ctl_fails 1 "has no list 'nosuch'" lists import r1 nosuch "$T_DIR/blocked.txt"
ok $? "lists import refuses a list that does not exist"

ctl rules import r1 - < "$T_DIR/block.json" > "$T_DIR/out" 2>&1 &&
    grep -q "rules installed" "$T_DIR/out" && grep -q "regigated reloaded" "$T_DIR/out"
ok $? "rules import r1 - (standard input) installs and reloads"
cmp -s "$T_DIR/block.json" "$ROUTES/r1/rules.json"
ok $? "rules.json holds the imported rule set byte for byte"
# the reload: the master starts new workers with the new rules
for ((i = 0; i < 50; i++)); do send --from spammer@example.net --to a@example.org --body x; rejected && break; sleep 0.1; done
rejected
ok $? "regigated applies the new rules: the listed sender is rejected"
send --from friend@example.net --to a@example.org --body x; accepted
ok $? "another sender is accepted"

ctl_fails 1 "is used by the rules" lists remove r1 blocked
ok $? "lists remove refuses a list the rules use"
[ -f "$ROUTES/r1/lists/blocked" ]
ok $? "the list is still there"

printf '{ "rules": [ { "name": "x", "action": "forward" } ],\n  "default": { "action": "bogus" } }\n' > "$T_DIR/bad.json"
ctl_fails 1 "bad.json:2:[0-9]*: error" rules import r1 "$T_DIR/bad.json"
ok $? "rules import refuses a broken rule set with FILE:LINE:COL"
cmp -s "$T_DIR/block.json" "$ROUTES/r1/rules.json"
ok $? "the installed rule set is unchanged"
send --from spammer@example.net --to a@example.org --body x; rejected
ok $? "regigated still applies the old rules"

printf 'other@example.net\r\nthird@example.net\n' > "$T_DIR/blocked2.txt"
ctl lists import r1 blocked "$T_DIR/blocked2.txt" > "$T_DIR/out" 2>&1 && grep -q "list blocked replaced, 2 entries" "$T_DIR/out"
ok $? "lists import replaces the list"
! ls -A "$ROUTES/r1/lists" | grep -q '^\.'
ok $? "no temporary file is left in lists/"
for ((i = 0; i < 50; i++)); do send --from other@example.net --to a@example.org --body x; rejected && break; sleep 0.1; done
rejected
ok $? "regigated uses the new list content"
send --from spammer@example.net --to a@example.org --body x; accepted
ok $? "the old entry no longer matches"

printf 'bad\0entry\n' > "$T_DIR/nul.txt"
ctl_fails 1 "refused; nothing changed" lists import r1 blocked "$T_DIR/nul.txt"
ok $? "lists import refuses a list with a NUL byte"
cmp -s "$T_DIR/blocked2.txt" "$ROUTES/r1/lists/blocked"
ok $? "and keeps the old content"

echo '{}' | ctl rules import r1 > /dev/null 2>&1 && ctl lists remove r1 blocked > "$T_DIR/out" 2>&1
ok $? "after importing rules without it, lists remove works"
[ ! -e "$ROUTES/r1/lists/blocked" ]
ok $? "the list file is gone"

# ---- route status: rules in use, lists, listeners, provider contact -------------
SPOOL=$T_DIR/spool
status_has() { grep -Eq -- "$1" "$T_DIR/status.out" || { sed 's/^/# /' "$T_DIR/status.out" >&2; return 1; }; }
ctl lists add r1 blocked "$T_DIR/blocked.txt" > /dev/null 2>&1 && ctl rules import r1 "$T_DIR/block.json" > /dev/null 2>&1
for ((i = 0; i < 50; i++)); do
    ctl route status r1 > "$T_DIR/status.out" 2>&1
    grep -q "^rules in use: yes" "$T_DIR/status.out" && break; sleep 0.1
done
status_has "^rules: $ROUTES/r1/rules.json \(1 rule\)$" &&
    status_has "^rules in use: yes, loaded by regigated [0-9-]+ [0-9:]+ UTC \([0-9]+ seconds ago\), 1 rule$"
ok $? "route status: the rule file, its rule count, and regigated runs it"
status_has "^lists: blocked \(1 entry, used\)$"
ok $? "route status: the lists with their entry counts and use"
status_has "^listener: up \(127.0.0.1:$BASE answers: 220 " &&
    status_has "^reinjection: up \(127.0.0.1:$((BASE + 1)) answers: 220 " &&
    status_has "^public: down \(127.0.0.1:$PUB: connect to 127.0.0.1:$PUB: Connection refused\)$"
ok $? "route status: regigated's listener and the next hop up, the public smtpd (no Postfix here) down"
status_has "^provider contact: none recorded \($SPOOL/route-r1.provider\)$" &&
    status_has "^certificate: Needed "
ok $? "route status: no provider contact recorded yet"
touch -d "-5 minutes" "$SPOOL/route-r1.provider"
ctl route status r1 > "$T_DIR/status.out" 2>&1
status_has "^provider contact: [0-9-]+ [0-9:]+ UTC \(5 minutes ago\)$"
ok $? "route status: the last provider contact regigated's workers recorded"
# the rules changed behind regigated's back: not in use until it reloads
printf '{}\n' > "$ROUTES/r1/rules.json"
ctl route status r1 > "$T_DIR/status.out" 2>&1
status_has "^rules: $ROUTES/r1/rules.json \(0 rules\)$" &&
    status_has "^rules in use: no: the rules or lists changed after regigated loaded them "
ok $? "route status: a rule file changed without a reload is not in use"
kill -HUP "$REGIGATED_PID"
for ((i = 0; i < 50; i++)); do
    ctl route status r1 > "$T_DIR/status.out" 2>&1
    grep -q "^rules in use: yes" "$T_DIR/status.out" && break; sleep 0.1
done
status_has "^rules in use: yes, .*, 0 rules$"
ok $? "after SIGHUP regigated runs it"
printf 'z@example.net\n' > "$ROUTES/r1/lists/blocked"
ctl route status r1 > "$T_DIR/status.out" 2>&1
status_has "^rules in use: no: "
ok $? "a list changed without a reload: not in use either"

t_done
